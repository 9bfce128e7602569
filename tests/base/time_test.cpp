#include "base/time.h"

#include <doctest/doctest.h>

using namespace builder;

TEST_CASE("time: rfc3339 writes UTC whole seconds") {
  CHECK(base::rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(base::rfc3339(1704164645) == "2024-01-02T03:04:05Z");
}

TEST_CASE("time: parse_rfc3339 reads what images carry, offsets and fractions included") {
  CHECK(base::parse_rfc3339("2024-01-02T03:04:05Z") == 1704164645);
  CHECK(base::parse_rfc3339("2024-01-02T03:04:05.123456789Z") == 1704164645);
  CHECK(base::parse_rfc3339("2024-01-02T05:04:05+02:00") == 1704164645);
  CHECK(base::parse_rfc3339("2024-01-02T01:04:05-02:00") == 1704164645);
  CHECK(base::parse_rfc3339(base::rfc3339(1700000000)) == 1700000000);
  CHECK(base::parse_rfc3339("yesterday") == 0);
}
