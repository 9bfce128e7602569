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

std::string human_duration(int64_t secs) {
  auto plural = [](int64_t n, const char* unit) { return std::to_string(n) + " " + unit; };
  if (secs < 1) return "Less than a second";
  if (secs == 1) return "1 second";
  if (secs < 60) return plural(secs, "seconds");
  int64_t mins = secs / 60;
  if (mins == 1) return "About a minute";
  if (mins < 60) return plural(mins, "minutes");
  int64_t hours = mins / 60;
  if (hours == 1) return "About an hour";
  if (hours < 48) return plural(hours, "hours");
  if (hours < 24 * 7 * 2) return plural(hours / 24, "days");
  if (hours < 24 * 30 * 2) return plural(hours / 24 / 7, "weeks");
  if (hours < 24 * 365 * 2) return plural(hours / 24 / 30, "months");
  return plural(hours / 24 / 365, "years");
}

}  // namespace builder::base
