// Instructions that only edit the image config (and history): ENV, LABEL, ARG, CMD,
// ENTRYPOINT, EXPOSE, USER, VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD.
// Strings follow BuildKit's dispatch* functions in dockerfile2llb/convert.go.
#include <cmath>
#include <cstdio>

#include "base/strings.h"
#include "frontend/lower_internal.h"

namespace builder::frontend::detail {
namespace {

/// Go's time.ParseDuration for the units HEALTHCHECK accepts; nullopt when invalid.
std::optional<int64_t> parse_duration(const std::string& s) {
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[i] == '-' || s[i] == '+') neg = s[i++] == '-';
  long double total = 0;
  bool any = false;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) return std::nullopt;
    long double num = std::stold(s.substr(start, i - start));
    size_t us = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    std::string unit = s.substr(us, i - us);
    long double mul;
    if (unit == "ns") mul = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mul = 1e3;
    else if (unit == "ms") mul = 1e6;
    else if (unit == "s") mul = 1e9;
    else if (unit == "m") mul = 60e9;
    else if (unit == "h") mul = 3600e9;
    else return std::nullopt;
    total += num * mul;
    any = true;
  }
  if (!any) return std::nullopt;
  return static_cast<int64_t>(neg ? -total : total);
}

/// Go's time.Duration.String.
std::string format_duration(int64_t d) {
  if (d == 0) return "0s";
  std::string sign = d < 0 ? "-" : "";
  uint64_t u = d < 0 ? static_cast<uint64_t>(-d) : static_cast<uint64_t>(d);
  auto frac = [](uint64_t v, int prec) {
    // v with `prec` decimal digits, trailing zeros removed.
    std::string digits = std::to_string(v % static_cast<uint64_t>(std::pow(10, prec)));
    digits = std::string(prec - digits.size(), '0') + digits;
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    std::string r = std::to_string(v / static_cast<uint64_t>(std::pow(10, prec)));
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

std::vector<std::string> parse_ports(const std::string& spec, bool& ok) {
  ok = true;
  std::string p = spec, proto = "tcp";
  auto slash = p.find('/');
  if (slash != std::string::npos) {
    proto = base::to_lower(p.substr(slash + 1));
    p = p.substr(0, slash);
  }
  // "ip:hostPort:containerPort" forms: the container port is last.
  auto colon = p.rfind(':');
  if (colon != std::string::npos) p = p.substr(colon + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 5 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  std::vector<std::string> out;
  auto dash = p.find('-');
  if (dash != std::string::npos) {
    std::string a = p.substr(0, dash), b = p.substr(dash + 1);
    if (!digits(a) || !digits(b) || std::stoul(a) > std::stoul(b) || std::stoul(b) > 65535) {
      ok = false;
      return out;
    }
    for (unsigned long i = std::stoul(a); i <= std::stoul(b); ++i)
      out.push_back(std::to_string(i) + "/" + proto);
    return out;
  }
  if (!digits(p) || std::stoul(p) > 65535) {
    ok = false;
    return out;
  }
  out.push_back(std::to_string(std::stoul(p)) + "/" + proto);
  return out;
}

}  // namespace

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
  auto no_flags = [&](std::initializer_list<const char*> allowed) {
    for (const auto& f : ins.flags) {
      auto eq = f.find('=');
      std::string name = f.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      bool ok = false;
      for (auto* a : allowed) ok |= name == a;
      if (!ok) fail(ins, "unknown flag: " + name);
    }
  };

  if (n == "env" || n == "label") {
    no_flags({});
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
    no_flags({});
    std::vector<std::string> args = ins.args;
    if (!ins.json_form) args = with_shell(st, args);
    if (!ins.json_form && ins.args.empty()) args = with_shell(st, {});
    if (n == "cmd") {
      cfg["Cmd"] = args;
      st.cmd_set = true;
      commit(st, "CMD " + go_quote_list(args), false, false);
    } else {
      cfg["Entrypoint"] = args;
      if (!st.cmd_set) cfg.erase("Cmd");
      commit(st, "ENTRYPOINT " + go_quote_list(args), false, false);
    }
  } else if (n == "expose") {
    no_flags({});
    std::vector<std::string> ports;
    for (const auto& a : ins.args)
      for (auto& w : expand_words(st, ins, a)) ports.push_back(w);
    std::vector<std::string> specs;
    for (const auto& p : ports) {
      bool ok;
      auto ps = parse_ports(p, ok);
      if (!ok) fail(ins, "invalid containerPort: " + p);
      specs.insert(specs.end(), ps.begin(), ps.end());
    }
    if (!cfg.contains("ExposedPorts") || !cfg["ExposedPorts"].is_object())
      cfg["ExposedPorts"] = base::Json::object();
    for (const auto& s : specs) cfg["ExposedPorts"][s] = base::Json::object();
    commit(st, "EXPOSE " + go_list(specs), false, false);
  } else if (n == "user") {
    no_flags({});
    if (ins.args.empty()) fail(ins, "USER requires exactly one argument");
    std::string u = expand_word(st, ins, ins.args[0]);
    cfg["User"] = u;
    commit(st, "USER " + u, false, false);
  } else if (n == "volume") {
    no_flags({});
    if (ins.args.empty()) fail(ins, "VOLUME requires at least one argument");
    std::vector<std::string> vols;
    for (const auto& a : ins.args) vols.push_back(expand_word(st, ins, a));
    if (!cfg.contains("Volumes") || !cfg["Volumes"].is_object()) cfg["Volumes"] = base::Json::object();
    for (const auto& v : vols) {
      if (v.empty()) fail(ins, "VOLUME specified can not be an empty string");
      cfg["Volumes"][v] = base::Json::object();
    }
    commit(st, "VOLUME " + go_list(vols), false, false);
  } else if (n == "stopsignal") {
    no_flags({});
    if (ins.args.empty()) fail(ins, "STOPSIGNAL requires exactly one argument");
    std::string s = expand_word(st, ins, ins.args[0]);
    cfg["StopSignal"] = s;
    commit(st, "STOPSIGNAL " + s, false, false);
  } else if (n == "shell") {
    no_flags({});
    if (!ins.json_form) fail(ins, "SHELL requires the arguments to be in JSON form");
    if (ins.args.empty()) fail(ins, "SHELL requires at least one argument");
    cfg["Shell"] = ins.args;
    commit(st, "SHELL " + go_list(ins.args), false, false);
  } else if (n == "maintainer") {
    no_flags({});
    std::string m = ins.args.empty() ? "" : ins.args[0];
    st.author = m;
    commit(st, "MAINTAINER " + m, false, false);
  } else if (n == "onbuild") {
    if (!ins.onbuild) fail(ins, "ONBUILD requires at least one argument");
    std::string trig = base::to_lower(ins.onbuild->name);
    if (trig == "onbuild") fail(ins, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (trig == "from" || trig == "maintainer")
      fail(ins, ins.onbuild->keyword + " isn't allowed as an ONBUILD trigger");
    if (!cfg.contains("OnBuild") || !cfg["OnBuild"].is_array()) cfg["OnBuild"] = base::Json::array();
    cfg["OnBuild"].push_back(ins.rest);
  } else if (n == "healthcheck") {
    no_flags({"interval", "timeout", "start-period", "start-interval", "retries"});
    if (ins.args.empty()) fail(ins, "HEALTHCHECK requires an argument");
    std::string typ = base::to_lower(ins.args[0]);
    base::Json hc = base::Json::object();
    std::string test_str;
    if (typ == "none") {
      if (ins.args.size() != 1) fail(ins, "HEALTHCHECK NONE takes no arguments");
      hc["Test"] = std::vector<std::string>{"NONE"};
      test_str = "[NONE]";
    } else if (typ == "cmd") {
      std::vector<std::string> cmd(ins.args.begin() + 1, ins.args.end());
      if (cmd.empty()) fail(ins, "Missing command after HEALTHCHECK CMD");
      std::vector<std::string> test;
      if (ins.json_form) {
        test = {"CMD"};
        test.insert(test.end(), cmd.begin(), cmd.end());
      } else {
        test = {"CMD-SHELL", base::join(cmd, " ")};
      }
      hc["Test"] = test;
      test_str = go_list(test);
    } else {
      fail(ins, "Unknown type \"" + ins.args[0] + "\" in HEALTHCHECK (try CMD)");
    }
    int64_t durs[4] = {0, 0, 0, 0};
    const char* keys[4] = {"Interval", "Timeout", "StartPeriod", "StartInterval"};
    const char* flags[4] = {"interval", "timeout", "start-period", "start-interval"};
    int retries = 0;
    for (const auto& f : ins.flags) {
      auto eq = f.find('=');
      std::string name = f.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      std::string v = eq == std::string::npos ? "" : f.substr(eq + 1);
      if (name == "retries") {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          fail(ins, "invalid value for retries: " + v);
        retries = std::stoi(v);
        continue;
      }
      for (int k = 0; k < 4; ++k) {
        if (name != flags[k]) continue;
        auto d = parse_duration(v);
        if (!d) fail(ins, "time: invalid duration " + go_quote_list({v}).substr(1, go_quote_list({v}).size() - 2));
        if (*d != 0 && *d < 1000000)
          fail(ins, std::string(keys[k]) + " \"" + v + "\" cannot be less than 1ms");
        durs[k] = *d;
      }
    }
    for (int k = 0; k < 4; ++k)
      if (durs[k]) hc[keys[k]] = durs[k];
    if (retries) hc["Retries"] = retries;
    cfg["Healthcheck"] = hc;
    commit(st,
           "HEALTHCHECK {Test:" + test_str + " Interval:" + format_duration(durs[0]) +
               " Timeout:" + format_duration(durs[1]) + " StartPeriod:" +
               format_duration(durs[2]) + " StartInterval:" + format_duration(durs[3]) +
               " Retries:" + std::to_string(retries) + "}",
           false, false);
  }
}

}  // namespace builder::frontend::detail
