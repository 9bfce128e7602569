// base/time.h — RFC 3339 timestamps as image configs, history entries and container
// records carry them (UTC, whole seconds, "2024-01-02T03:04:05Z").
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace builder::base {

/// `t` as "YYYY-MM-DDTHH:MM:SSZ".
std::string rfc3339(std::time_t t);
/// The current time as rfc3339().
std::string rfc3339_now();
/// Unix seconds of an RFC 3339 timestamp ("2024-01-02T03:04:05.123+02:00"), fractions
/// ignored; 0 if it does not parse.
int64_t parse_rfc3339(const std::string& s);
/// A duration as docker prints ages (go-units HumanDuration): "Less than a second",
/// "About a minute", "3 hours", "2 weeks".
std::string human_duration(int64_t secs);

}  // namespace builder::base
