// cache/gc_policy.cpp — the GC policy of a root (<root>/config.json over BuildKit's
// defaults) and the size and duration syntaxes it and `builder prune` accept.
#include "cache/gc_policy.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/strings.h"

namespace builder::cache {
namespace {

/// A short run of decimal digits (fits an int).
bool is_digits(const std::string& s) {
  return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

[[noreturn]] void bad_size(const std::string& text) {
  throw base::Error("invalid size `" + text + "`: expected bytes with an optional unit (e.g. 512MiB, 10GB, 1.5g)");
}

}  // namespace

// ---------------------------------------------------------------- policy

int64_t DiskSpace::resolve(int64_t fs_total) const {
  if (bytes > 0) return bytes;
  if (percent <= 0) return 0;
  int64_t b = static_cast<int64_t>(static_cast<long double>(fs_total) * percent / 100);
  return cap_bytes > 0 ? std::min(b, cap_bytes) : b;
}

GcPolicy default_policy() {
  GcPolicy p;
  p.enabled = true;
  p.keep_duration_ns = int64_t{60} * 24 * 3600 * 1000000000;
  p.reserved = DiskSpace{0, 10, int64_t{10} * 1000 * 1000 * 1000};
  p.max_used = DiskSpace{0, 80, int64_t{100} * 1000 * 1000 * 1000};
  p.min_free = DiskSpace{0, 20, 0};
  return p;
}

namespace {

DiskSpace parse_space(const base::Json& v, const std::string& where) {
  DiskSpace d;
  try {
    if (v.is_number_integer()) {
      long long n = v.get<long long>();
      if (n < 0) throw base::Error("must not be negative");
      d.bytes = n;
      return d;
    }
    if (!v.is_string()) throw base::Error("expected a size string such as \"10GB\" or a percentage such as \"20%\"");
    std::string s(base::trim(v.get<std::string>()));
    if (!s.empty() && s.back() == '%') {
      std::string n(base::trim(std::string_view(s).substr(0, s.size() - 1)));
      if (!is_digits(n)) throw base::Error("invalid percentage `" + s + "`");
      int pct = std::atoi(n.c_str());
      if (pct > 100) throw base::Error("invalid percentage `" + s + "`: more than 100%");
      d.percent = pct;
      return d;
    }
    d.bytes = parse_size(s);
    return d;
  } catch (base::Error& e) {
    throw base::Error(where + ": " + e.message());
  }
}

}  // namespace

GcPolicy parse_policy(const std::string& text, const std::string& path) {
  const std::string file = "config file `" + path + "`";
  base::Json j = base::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw base::Error(file + " is not valid JSON");
  if (!j.is_object()) throw base::Error(file + ": expected a JSON object");
  GcPolicy p = default_policy();
  for (const auto& [key, value] : j.items()) {
    // `sandbox` belongs to cli/sandbox_config.cpp.
    if (key != "gc" && key != "sandbox") throw base::Error(file + ": unknown key `" + key + "` (known: gc, sandbox)");
  }
  if (!j.contains("gc")) return p;
  const auto& gc = j["gc"];
  if (!gc.is_object()) throw base::Error(file + ": `gc` must be an object");
  for (const auto& [key, value] : gc.items()) {
    std::string where = file + ": gc." + key;
    if (key == "enabled") {
      if (!value.is_boolean()) throw base::Error(where + ": expected true or false");
      p.enabled = value.get<bool>();
    } else if (key == "keepDuration") {
      try {
        if (value.is_number_integer()) {
          long long s = value.get<long long>();
          if (s < 0 || s > std::numeric_limits<int64_t>::max() / 1000000000) throw base::Error("out of range");
          p.keep_duration_ns = s * 1000000000;  // BuildKit reads a bare number as seconds
        } else if (value.is_string()) {
          p.keep_duration_ns = parse_duration(value.get<std::string>());
          if (p.keep_duration_ns < 0) throw base::Error("must not be negative");
        } else {
          throw base::Error("expected a duration such as \"48h\"");
        }
      } catch (base::Error& e) {
        throw base::Error(where + ": " + e.message());
      }
    } else if (key == "reservedSpace") {
      p.reserved = parse_space(value, where);
    } else if (key == "maxUsedSpace") {
      p.max_used = parse_space(value, where);
    } else if (key == "minFreeSpace") {
      p.min_free = parse_space(value, where);
    } else {
      throw base::Error(where + ": unknown key (known: enabled, keepDuration, reservedSpace, maxUsedSpace, "
                                "minFreeSpace)");
    }
  }
  return p;
}

GcPolicy load_policy(const std::string& root) {
  std::string path = base::path_join(root, "config.json");
  if (!base::path_exists(path)) return default_policy();
  std::string text;
  try {
    text = base::read_file(path);
  } catch (base::Error& e) {
    throw e.add_context("while reading the config file `" + path + "`");
  }
  return parse_policy(text, path);
}

GcStats fs_stats(const std::string& root) {
  struct statvfs st;
  if (::statvfs(root.c_str(), &st) < 0) throw base::SysError(errno, "statvfs", root);
  GcStats s;
  s.fs_total = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
  s.fs_free = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  return s;
}

// ---------------------------------------------------------------- parsing

int64_t parse_size(const std::string& text) {
  std::string s(base::trim(text));
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0) bad_size(text);
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == frac) bad_size(text);
  }
  double value = std::strtod(s.substr(0, i).c_str(), nullptr);
  std::string unit = base::to_lower(base::trim(std::string_view(s).substr(i)));
  // [kmgtp]?i?b? as docker's RAMInBytes: every unit is binary.
  double mult = 1;
  size_t u = 0;
  if (u < unit.size()) {
    const std::string prefixes = "kmgtp";
    auto p = prefixes.find(unit[u]);
    if (p != std::string::npos) {
      mult = std::pow(1024.0, static_cast<double>(p + 1));
      ++u;
    }
  }
  if (u < unit.size() && unit[u] == 'i' && u > 0) ++u;
  if (u < unit.size() && unit[u] == 'b') ++u;
  if (u != unit.size()) bad_size(text);
  long double bytes = static_cast<long double>(value) * mult;
  if (bytes >= static_cast<long double>(std::numeric_limits<int64_t>::max()))
    throw base::Error("invalid size `" + text + "`: too large");
  return static_cast<int64_t>(bytes);
}

int64_t parse_duration(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return base::Error("invalid duration `" + text + "`: " + why + " (expected e.g. 24h, 90m, 1h30m)");
  };
  std::string s(base::trim(text));
  if (s.empty()) throw bad("empty");
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    ++i;
  }
  if (s.substr(i) == "0") return 0;
  if (i == s.size()) throw bad("no number");
  long double total = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    std::string num = s.substr(start, i - start);
    if (num.empty() || num == "." || std::count(num.begin(), num.end(), '.') > 1) throw bad("bad number");
    size_t ustart = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    std::string unit = s.substr(ustart, i - ustart);
    long double mult;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") mult = 1e3;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "s") mult = 1e9;
    else if (unit == "m") mult = 60e9;
    else if (unit == "h") mult = 3600e9;
    else if (unit.empty()) throw bad("missing unit");
    else throw bad("unknown unit `" + unit + "`");
    total += std::strtold(num.c_str(), nullptr) * mult;
  }
  if (total >= static_cast<long double>(std::numeric_limits<int64_t>::max())) throw bad("too large");
  auto ns = static_cast<int64_t>(total);
  return neg ? -ns : ns;
}

}  // namespace builder::cache
