#include "base/time.h"

#include <cstdio>

namespace builder::base {

std::string rfc3339(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string rfc3339_now() { return rfc3339(std::time(nullptr)); }

int64_t parse_rfc3339(const std::string& s) {
  std::tm tm{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  int64_t t = ::timegm(&tm);
  while (*rest == '.' || (*rest >= '0' && *rest <= '9')) ++rest;
  if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(rest + 1, "%d:%d", &hh, &mm) >= 1) {
      int off = hh * 3600 + mm * 60;
      t += (*rest == '+') ? -off : off;
    }
  }
  return t;
}

}  // namespace builder::base
