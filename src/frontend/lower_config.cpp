// Instructions that only edit the image config (and history): ENV, LABEL, ARG, CMD,
// ENTRYPOINT, EXPOSE, USER, VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD.
// Strings follow current BuildKit: the parse* checks of instructions/parse.go and the
// dispatch* functions of dockerfile2llb (convert.go, convert_expose.go). Where docker
// 20.10's older BuildKit writes otherwise (EXPOSE map[...], HEALTHCHECK &{...}, ARG
// without the value it took, COPY without --chown/--chmod), we write what BuildKit
// writes now. normalize_config is the JSON shape of its image type (docker-image-spec).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <optional>

#include "base/strings.h"
#include "frontend/lower_internal.h"
#include "frontend/parse.h"

namespace builder::frontend::detail {
namespace {

constexpr uint64_t kMaxDuration = uint64_t{1} << 63;

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

/// Go's time.ParseDuration, with its error messages; throws base::Error.
int64_t parse_duration(const std::string& orig) {
  auto invalid = [&] { return base::Error("time: invalid duration " + go_quote(orig)); };
  std::string_view s = orig;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) throw invalid();
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  uint64_t d = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || digit(s[0]))) throw invalid();
    // leadingInt
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.size() && digit(s[i]); ++i) {
      if (v > kMaxDuration / 10) throw invalid();
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > kMaxDuration) throw invalid();
    }
    bool pre = i > 0;
    s.remove_prefix(i);
    // leadingFraction: digits past what fits are consumed and ignored.
    uint64_t f = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;
      for (; j < s.size() && digit(s[j]); ++j) {
        if (overflow) continue;
        if (f > (kMaxDuration - 1) / 10) {
          overflow = true;
          continue;
        }
        uint64_t y = f * 10 + static_cast<uint64_t>(s[j] - '0');
        if (y > kMaxDuration) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = j > 0;
      s.remove_prefix(j);
    }
    if (!pre && !post) throw invalid();
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && !digit(s[u])) ++u;
    if (u == 0) throw base::Error("time: missing unit in duration " + go_quote(orig));
    std::string unit(s.substr(0, u));
    s.remove_prefix(u);
    uint64_t mul;
    if (unit == "ns") mul = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mul = 1000;
    else if (unit == "ms") mul = 1000000;
    else if (unit == "s") mul = 1000000000;
    else if (unit == "m") mul = 60000000000ULL;
    else if (unit == "h") mul = 3600000000000ULL;
    else throw base::Error("time: unknown unit " + go_quote(unit) + " in duration " + go_quote(orig));
    if (v > kMaxDuration / mul) throw invalid();
    v *= mul;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) * (static_cast<double>(mul) / scale));
      if (v > kMaxDuration) throw invalid();
    }
    d += v;
    if (d > kMaxDuration) throw invalid();
  }
  if (neg) return d == kMaxDuration ? INT64_MIN : -static_cast<int64_t>(d);
  if (d > kMaxDuration - 1) throw invalid();
  return static_cast<int64_t>(d);
}

/// Go's time.Duration.String.
std::string format_duration(int64_t d) {
  if (d == 0) return "0s";
  std::string sign = d < 0 ? "-" : "";
  uint64_t u = d < 0 ? static_cast<uint64_t>(-(d + 1)) + 1 : static_cast<uint64_t>(d);
  auto frac = [](uint64_t v, int prec) {
    // v with `prec` decimal digits, trailing zeros removed.
    uint64_t pow10 = 1;
    for (int i = 0; i < prec; ++i) pow10 *= 10;
    std::string digits = std::to_string(v % pow10);
    digits = std::string(prec - digits.size(), '0') + digits;
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    std::string r = std::to_string(v / pow10);
    if (!digits.empty()) r += "." + digits;
    return r;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + frac(u, 3) + "\xC2\xB5s";
  if (u < 1000000000) return sign + frac(u, 6) + "ms";
  uint64_t secs_ns = u % 60000000000ULL;
  uint64_t mins = u / 60000000000ULL;
  std::string out = frac(secs_ns, 9) + "s";
  if (mins > 0) {
    uint64_t h = mins / 60;
    out = std::to_string(mins % 60) + "m" + out;
    if (h > 0) out = std::to_string(h) + "h" + out;
  }
  return sign + out;
}

/// strconv.ParseInt(s, 10, bits) as far as its result and error text go.
std::optional<int64_t> parse_int(const std::string& s, int bits, std::string& err) {
  std::string_view v = s;
  bool neg = false;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) {
    err = "strconv.ParseInt: parsing " + go_quote(s) + ": invalid syntax";
    return std::nullopt;
  }
  const uint64_t limit = uint64_t{1} << (bits - 1);
  uint64_t n = 0;
  for (char c : v) {
    if (n > limit) break;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if ((!neg && n >= limit) || (neg && n > limit)) {
    err = "strconv.ParseInt: parsing " + go_quote(s) + ": value out of range";
    return std::nullopt;
  }
  return neg ? -static_cast<int64_t>(n) : static_cast<int64_t>(n);
}

/// EXPOSE's parsePortRange: "80" or "8000-8002" -> [start, end]; nullopt if invalid.
std::optional<std::pair<int, int>> parse_port_range(const std::string& ports) {
  if (ports.empty()) return std::nullopt;
  auto number = [](const std::string& p) -> std::optional<int> {
    std::string err;
    auto n = parse_int(p, 64, err);
    if (!n || *n < 0 || *n > 65535) return std::nullopt;
    return static_cast<int>(*n);
  };
  auto dash = ports.find('-');
  std::string start = ports.substr(0, dash);
  auto a = number(start);
  if (!a) return std::nullopt;
  if (dash == std::string::npos || start == ports.substr(dash + 1)) return std::make_pair(*a, *a);
  auto b = number(ports.substr(dash + 1));
  if (!b || *b < *a) return std::nullopt;
  return std::make_pair(*a, *b);
}

bool valid_ip(const std::string& ip) {
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

/// EXPOSE's parsePort: "[ip:][hostPort:]containerPort[/proto]" -> "port/proto" for each
/// container port. Throws base::Error with BuildKit's message.
std::vector<std::string> parse_port(const std::string& raw) {
  std::vector<std::string> parts = base::split(raw, ':');
  std::string ip, host, container;
  if (parts.size() == 1) {
    container = parts[0];
  } else if (parts.size() == 2) {
    host = parts[0];
    container = parts[1];
  } else {
    std::vector<std::string> head(parts.begin(), parts.end() - 2);
    ip = base::join(head, ":");
    host = parts[parts.size() - 2];
    container = parts.back();
  }
  auto slash = container.find('/');
  std::string proto = slash == std::string::npos ? "" : container.substr(slash + 1);
  container = container.substr(0, slash);
  if (container.empty()) throw base::Error("invalid port: " + go_quote(raw) + ": no port specified");
  std::string lproto = base::to_lower(proto);
  if (lproto.empty()) lproto = "tcp";
  else if (lproto != "tcp" && lproto != "udp" && lproto != "sctp")
    throw base::Error("invalid port: " + go_quote(raw) + ": invalid proto: " + proto);
  if (!ip.empty() && ip[0] == '[') {
    // net.SplitHostPort(ip + ":") strips the brackets of an IPv6 address.
    auto close = ip.find(']');
    if (close == std::string::npos || close + 1 != ip.size())
      throw base::Error("invalid IP address " + ip);
    ip = ip.substr(1, close - 1);
  }
  if (!ip.empty() && !valid_ip(ip)) throw base::Error("invalid IP address: " + ip);
  auto range = parse_port_range(container);
  if (!range) throw base::Error("invalid containerPort: " + container);
  if (!host.empty()) {
    auto hr = parse_port_range(host);
    if (!hr) throw base::Error("invalid hostPort: " + host);
    if (range->second - range->first != hr->second - hr->first && range->second != range->first)
      throw base::Error("invalid ranges specified for container and host Ports: " + container + " and " + host);
  }
  std::vector<std::string> out;
  for (int p = range->first; p <= range->second; ++p) out.push_back(std::to_string(p) + "/" + lproto);
  return out;
}

/// moby/sys/signal.ParseSignal: a non-zero number or a Linux signal name, with or
/// without "SIG", any case.
bool valid_signal(const std::string& raw) {
  std::string err;
  if (auto n = parse_int(raw, 64, err)) return *n != 0 && *n >= INT32_MIN && *n <= INT32_MAX;
  std::string s = upper(raw);
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  static const char* const kNames[] = {
      "ABRT", "ALRM",  "BUS",  "CHLD", "CLD",  "CONT", "FPE",  "HUP",  "ILL",    "INT",  "IO",   "IOT",
      "KILL", "PIPE",  "POLL", "PROF", "PWR",  "QUIT", "SEGV", "STKFLT", "STOP", "SYS",  "TERM", "TRAP",
      "TSTP", "TTIN",  "TTOU", "URG",  "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};
  for (const char* n : kNames)
    if (s == n) return true;
  // RTMIN+1 .. RTMIN+15 and RTMAX-14 .. RTMAX-1
  for (int i = 1; i <= 15; ++i)
    if (s == "RTMIN+" + std::to_string(i)) return true;
  for (int i = 1; i <= 14; ++i)
    if (s == "RTMAX-" + std::to_string(i)) return true;
  return false;
}

}  // namespace

base::Json normalize_config(const base::Json& c) {
  // ocispec.ImageConfig then DockerOCIImageConfigExt, every field `omitempty`.
  auto sorted_object = [](const base::Json& o) {
    std::map<std::string, base::Json> m;
    for (auto it = o.begin(); it != o.end(); ++it) m[it.key()] = it.value();
    base::Json out = base::Json::object();
    for (auto& [k, v] : m) out[k] = v;
    return out;
  };
  base::Json out = base::Json::object();
  auto copy_if = [&](const char* key, auto&& keep) {
    auto it = c.find(key);
    if (it != c.end() && keep(*it)) out[key] = *it;
  };
  auto nonempty_string = [](const base::Json& v) { return v.is_string() && !v.get<std::string>().empty(); };
  auto nonempty_array = [](const base::Json& v) { return v.is_array() && !v.empty(); };
  auto nonempty_object = [](const base::Json& v) { return v.is_object() && !v.empty(); };
  copy_if("User", nonempty_string);
  copy_if("ExposedPorts", nonempty_object);
  copy_if("Env", nonempty_array);
  copy_if("Entrypoint", nonempty_array);
  copy_if("Cmd", nonempty_array);
  copy_if("Volumes", nonempty_object);
  copy_if("WorkingDir", nonempty_string);
  copy_if("Labels", nonempty_object);
  copy_if("StopSignal", nonempty_string);
  copy_if("ArgsEscaped", [](const base::Json& v) { return v.is_boolean() && v.get<bool>(); });
  auto hc = c.find("Healthcheck");
  if (hc != c.end() && hc->is_object()) {
    base::Json h = base::Json::object();
    for (const char* k : {"Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"}) {
      auto it = hc->find(k);
      if (it == hc->end() || it->is_null()) continue;
      if ((it->is_array() && it->empty()) || (it->is_number() && it->get<int64_t>() == 0)) continue;
      h[k] = *it;
    }
    out["Healthcheck"] = h;
  }
  copy_if("OnBuild", nonempty_array);
  copy_if("Shell", nonempty_array);
  for (const char* k : {"ExposedPorts", "Volumes", "Labels"})
    if (out.contains(k)) out[k] = sorted_object(out[k]);
  return out;
}

void Lowerer::lower_arg(Stage& st, const ast::Instruction& ins) {
  std::vector<std::string> commit_strs;
  for (const auto& w : ins.args) {
    BuildArg a;
    auto eq = w.find('=');
    a.key = w.substr(0, eq);
    if (eq != std::string::npos) a.value = w.substr(eq + 1);
    auto bo = opts_.build_args.find(a.key);
    bool has_value = bo != opts_.build_args.end();
    bool has_default = a.value.has_value();
    if (!has_default && !has_value) {
      for (const auto& g : global_args_)
        if (g.key == a.key && g.value) a.value = g.value;
      if (!a.value) {
        auto b = builtin_args_.find(a.key);
        if (b != builtin_args_.end()) a.value = b->second;
      }
    }
    if (has_value) a.value = bo->second;
    else if (has_default) a.value = expand_word(st, ins, *a.value);
    if (a.value) add_env(st.run_env, a.key, *a.value);
    st.build_args.push_back(a);
    commit_strs.push_back(a.value ? a.key + "=" + *a.value : a.key);
  }
  commit(st, "ARG " + base::join(commit_strs, " "), false, false);
}

void Lowerer::lower_config(Stage& st, const ast::Instruction& ins) {
  const std::string& n = ins.name;
  auto& cfg = st.config;
  // BFlags.Parse for the flags an instruction declares: name -> value.
  auto parse_flags = [&](std::initializer_list<const char*> allowed) {
    std::map<std::string, std::string> out;
    for (const auto& f : ins.flags) {
      auto eq = f.find('=');
      std::string flag = f.substr(0, eq);
      std::string name = flag.substr(2);
      bool ok = false;
      for (auto* a : allowed) ok |= name == a;
      if (!ok) fail(ins, "unknown flag: " + flag);
      if (eq == std::string::npos) fail(ins, "missing a value on flag: " + flag);
      if (out.count(name)) fail(ins, "duplicate flag specified: " + flag);
      out[name] = f.substr(eq + 1);
    }
    return out;
  };

  if (n == "env" || n == "label") {
    parse_flags({});
    std::string msg = n == "env" ? "ENV" : "LABEL";
    if (ins.args.empty()) fail(ins, msg + " requires at least one argument");
    std::vector<std::pair<std::string, std::string>> pairs;
    // All words expand against the env before this instruction (BuildKit's Expand).
    for (size_t i = 0; i + 1 < ins.args.size(); i += 3)
      pairs.emplace_back(expand_word(st, ins, ins.args[i]), expand_word(st, ins, ins.args[i + 1]));
    for (auto& [k, v] : pairs) {
      msg += " " + k + "=" + v;
      if (n == "env") {
        if (!cfg.contains("Env") || !cfg["Env"].is_array()) cfg["Env"] = base::Json::array();
        std::vector<std::string> env = cfg["Env"].get<std::vector<std::string>>();
        add_env(env, k, v);
        cfg["Env"] = env;
        add_env(st.run_env, k, v);
      } else {
        if (!cfg.contains("Labels") || !cfg["Labels"].is_object()) cfg["Labels"] = base::Json::object();
        cfg["Labels"][k] = v;
      }
    }
    commit(st, msg, false, false);
  } else if (n == "cmd" || n == "entrypoint") {
    parse_flags({});
    std::vector<std::string> args = ins.args;
    if (!ins.json_form) args = with_shell(st, args);
    if (n == "cmd") {
      cfg["Cmd"] = args;
      // dispatchCmd sets ArgsEscaped on every CMD (Docker image spec compatibility).
      cfg["ArgsEscaped"] = true;
      st.cmd_set = true;
      commit(st, "CMD " + go_quote_list(args), false, false);
    } else {
      // `ENTRYPOINT []` clears it; a CMD inherited from the base goes unless this
      // stage set one, as Docker does.
      if (args.empty()) cfg.erase("Entrypoint");
      else cfg["Entrypoint"] = args;
      if (!st.cmd_set) cfg.erase("Cmd");
      commit(st, "ENTRYPOINT " + go_quote_list(args), false, false);
    }
  } else if (n == "expose") {
    parse_flags({});
    if (ins.args.empty()) fail(ins, "EXPOSE requires at least one argument");
    // parseExpose sorts the words as written, before expansion.
    std::vector<std::string> words = ins.args;
    std::sort(words.begin(), words.end());
    std::vector<std::string> specs;
    for (const auto& w : words)
      for (const auto& p : expand_words(st, ins, w)) {
        std::vector<std::string> ps;
        try {
          ps = parse_port(p);
        } catch (const base::Error& e) {
          fail(ins, e.message());
        }
        specs.insert(specs.end(), ps.begin(), ps.end());
      }
    if (!cfg.contains("ExposedPorts") || !cfg["ExposedPorts"].is_object())
      cfg["ExposedPorts"] = base::Json::object();
    for (const auto& s : specs) cfg["ExposedPorts"][s] = base::Json::object();
    commit(st, "EXPOSE " + go_list(specs), false, false);
  } else if (n == "user") {
    parse_flags({});
    if (ins.args.size() != 1) fail(ins, "USER requires exactly one argument");
    std::string u = expand_word(st, ins, ins.args[0]);
    cfg["User"] = u;
    commit(st, "USER " + u, false, false);
  } else if (n == "volume") {
    parse_flags({});
    if (ins.args.empty()) fail(ins, "VOLUME requires at least one argument");
    std::vector<std::string> vols;
    for (const auto& a : ins.args) {
      std::string v(base::trim(a));
      if (v.empty()) fail(ins, "VOLUME specified can not be an empty string");
      vols.push_back(expand_word(st, ins, v));
    }
    if (!cfg.contains("Volumes") || !cfg["Volumes"].is_object()) cfg["Volumes"] = base::Json::object();
    for (const auto& v : vols) {
      if (v.empty()) fail(ins, "VOLUME specified can not be an empty string");
      cfg["Volumes"][v] = base::Json::object();
    }
    commit(st, "VOLUME " + go_list(vols), false, false);
  } else if (n == "stopsignal") {
    if (ins.args.size() != 1) fail(ins, "STOPSIGNAL requires exactly one argument");
    std::string s = expand_word(st, ins, ins.args[0]);
    if (!valid_signal(s)) fail(ins, "invalid signal: " + s);
    cfg["StopSignal"] = s;
    commit(st, "STOPSIGNAL " + s, false, false);
  } else if (n == "shell") {
    parse_flags({});
    if (ins.args.empty()) fail(ins, "SHELL requires at least one argument");
    if (!ins.json_form) fail(ins, "SHELL requires the arguments to be in JSON form");
    cfg["Shell"] = ins.args;
    commit(st, "SHELL " + go_list(ins.args), false, false);
  } else if (n == "maintainer") {
    if (ins.args.size() != 1) fail(ins, "MAINTAINER requires exactly one argument");
    parse_flags({});
    st.author = ins.args[0];
    commit(st, "MAINTAINER " + ins.args[0], false, false);
  } else if (n == "onbuild") {
    if (!ins.onbuild) fail(ins, "ONBUILD requires at least one argument");
    parse_flags({});
    std::string trig = base::to_lower(ins.onbuild->name);
    if (trig == "onbuild") fail(ins, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (trig == "from" || trig == "maintainer")
      fail(ins, upper(ins.onbuild->keyword) + " isn't allowed as an ONBUILD trigger");
    if (!cfg.contains("OnBuild") || !cfg["OnBuild"].is_array()) cfg["OnBuild"] = base::Json::array();
    cfg["OnBuild"].push_back(onbuild_expression(ins));
  } else if (n == "healthcheck") {
    if (ins.args.empty()) fail(ins, "HEALTHCHECK requires at least one argument");
    std::string typ = upper(ins.args[0]);
    base::Json hc = base::Json::object();
    int64_t durs[4] = {0, 0, 0, 0};
    int64_t retries = 0;
    if (typ == "NONE") {
      // parseHealthcheck reads no flags for NONE.
      if (ins.args.size() != 1) fail(ins, "HEALTHCHECK NONE takes no arguments");
      hc["Test"] = std::vector<std::string>{"NONE"};
    } else {
      auto flags = parse_flags({"interval", "timeout", "start-period", "start-interval", "retries"});
      if (typ != "CMD") fail(ins, "Unknown type " + go_quote(typ) + " in HEALTHCHECK (try CMD)");
      std::vector<std::string> cmd(ins.args.begin() + 1, ins.args.end());
      if (!ins.json_form && !cmd.empty()) cmd = {base::join(cmd, " ")};
      if (cmd.empty()) fail(ins, "Missing command after HEALTHCHECK CMD");
      std::vector<std::string> test{ins.json_form ? "CMD" : "CMD-SHELL"};
      test.insert(test.end(), cmd.begin(), cmd.end());
      hc["Test"] = test;
      const char* names[4] = {"interval", "timeout", "start-period", "start-interval"};
      for (int k = 0; k < 4; ++k) {
        auto it = flags.find(names[k]);
        if (it == flags.end() || it->second.empty()) continue;
        int64_t d = 0;
        try {
          d = parse_duration(it->second);
        } catch (const base::Error& e) {
          fail(ins, e.message());
        }
        if (d != 0 && d < 1000000)
          fail(ins, "Interval " + go_quote(names[k]) + " cannot be less than 1ms");
        durs[k] = d;
      }
      auto r = flags.find("retries");
      if (r != flags.end() && !r->second.empty()) {
        std::string err;
        auto v = parse_int(r->second, 32, err);
        if (!v) fail(ins, err);
        if (*v < 0) fail(ins, "--retries cannot be negative (" + std::to_string(*v) + ")");
        retries = *v;
      }
    }
    const char* keys[4] = {"Interval", "Timeout", "StartPeriod", "StartInterval"};
    for (int k = 0; k < 4; ++k)
      if (durs[k]) hc[keys[k]] = durs[k];
    if (retries) hc["Retries"] = retries;
    cfg["Healthcheck"] = hc;
    // fmt %+v of the HealthcheckConfig.
    commit(st,
           "HEALTHCHECK {Test:" + go_list(hc["Test"].get<std::vector<std::string>>()) +
               " Interval:" + format_duration(durs[0]) + " Timeout:" + format_duration(durs[1]) +
               " StartPeriod:" + format_duration(durs[2]) + " StartInterval:" + format_duration(durs[3]) +
               " Retries:" + std::to_string(retries) + "}",
           false, false);
  }
}

}  // namespace builder::frontend::detail
