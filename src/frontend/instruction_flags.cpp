// Flag parsing as BuildKit's instructions package: the declared flags of each
// instruction (BFlags), RUN's --network/--security values and --mount's CSV fields.
#include "frontend/instruction_flags.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/error.h"
#include "base/strings.h"

namespace builder::frontend::detail {
namespace {

enum class Kind { Bool, String, Strings };

struct FlagSpec {
  const char* name;
  Kind kind;
};

/// What each instruction declares; an instruction not listed accepts no flag.
const std::vector<FlagSpec>& declared(const std::string& instruction) {
  static const std::map<std::string, std::vector<FlagSpec>> table = {
      {"from", {{"platform", Kind::String}}},
      {"run", {{"mount", Kind::Strings}, {"network", Kind::String}, {"security", Kind::String}}},
      {"copy",
       {{"chown", Kind::String},
        {"from", Kind::String},
        {"chmod", Kind::String},
        {"link", Kind::Bool},
        {"exclude", Kind::Strings},
        {"parents", Kind::Bool}}},
      {"add",
       {{"chown", Kind::String},
        {"chmod", Kind::String},
        {"link", Kind::Bool},
        {"keep-git-dir", Kind::Bool},
        {"checksum", Kind::String},
        {"unpack", Kind::Bool},
        {"exclude", Kind::Strings}}},
      {"healthcheck",
       {{"interval", Kind::String},
        {"timeout", Kind::String},
        {"start-period", Kind::String},
        {"start-interval", Kind::String},
        {"retries", Kind::String}}},
  };
  static const std::vector<FlagSpec> none;
  auto it = table.find(instruction);
  return it == table.end() ? none : it->second;
}

[[noreturn]] void fail(const ast::Instruction& ins, const std::string& msg) { throw base::Error(msg, ins.range); }

/// Go's strconv.ParseBool.
std::optional<bool> parse_bool(const std::string& v) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") return false;
  return std::nullopt;
}

/// Go's strconv.ParseUint(v, base, 32).
std::optional<uint32_t> parse_uint(const std::string& v, int base) {
  uint32_t n = 0;
  if (v.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return n;
}

}  // namespace

std::string InstructionFlags::str(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? def : it->second.back();
}

bool InstructionFlags::boolean(const std::string& name) const { return str(name, "false") == "true"; }

std::vector<std::string> InstructionFlags::list(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

InstructionFlags parse_flags(const ast::Instruction& ins) {
  InstructionFlags out;
  const auto& specs = declared(ins.name);
  for (const auto& a : ins.flags) {
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) fail(ins, "arg should start with -- : " + a);
    auto eq = a.find('=');
    std::string flag = a.substr(0, eq);
    std::string name = flag.substr(2);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? a.substr(eq + 1) : "";
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs)
      if (name == s.name) spec = &s;
    if (!spec) fail(ins, "unknown flag: " + flag);
    if (out.values_.count(name) && spec->kind != Kind::Strings) fail(ins, "duplicate flag specified: " + flag);
    auto& slot = out.values_[name];
    switch (spec->kind) {
      case Kind::Bool: {
        if (has_value && value.empty()) fail(ins, "missing a value on flag: " + flag);
        std::string v = base::to_lower(value);
        if (v != "true" && v != "false" && !v.empty())
          fail(ins, "expecting boolean value for flag " + flag + ", not: " + value);
        slot = {v == "false" ? "false" : "true"};
        break;
      }
      case Kind::String:
        if (!has_value) fail(ins, "missing a value on flag: " + flag);
        slot = {value};
        break;
      case Kind::Strings:
        if (!has_value) fail(ins, "missing a value on flag: " + flag);
        slot.push_back(value);
        break;
    }
  }
  return out;
}

std::vector<std::string> csv_fields(const std::string& value) {
  // encoding/csv with default settings on a single record: fields separated by ',',
  // a field starting with '"' is quoted ("" is a quote inside), a bare '"' inside an
  // unquoted field is an error.
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = value.size();
  if (n == 0) return out;
  while (true) {
    std::string field;
    if (i < n && value[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        if (value[i] == '"') {
          if (i + 1 < n && value[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += value[i++];
      }
      if (!closed) throw base::Error("failed to parse csv mounts: extraneous or missing \" in quoted-field");
      if (i < n && value[i] != ',') throw base::Error("failed to parse csv mounts: extraneous or missing \" in quoted-field");
    } else {
      while (i < n && value[i] != ',') {
        if (value[i] == '"') throw base::Error("failed to parse csv mounts: bare \" in non-quoted-field");
        field += value[i++];
      }
    }
    out.push_back(field);
    if (i >= n) break;
    ++i;  // the ','
    if (i == n) {
      out.emplace_back();
      break;
    }
  }
  return out;
}

std::optional<int64_t> ram_in_bytes(const std::string& s) {
  // ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string num = s.substr(0, i);
  if (num.empty() || !std::isdigit(static_cast<unsigned char>(num[0])) || num.back() == '.' ||
      num.find("..") != std::string::npos)
    return std::nullopt;
  std::string rest = s.substr(i);
  if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
  int64_t mult = 1;
  if (!rest.empty()) {
    switch (std::tolower(static_cast<unsigned char>(rest[0]))) {
      case 'k': mult = 1LL << 10; break;
      case 'm': mult = 1LL << 20; break;
      case 'g': mult = 1LL << 30; break;
      case 't': mult = 1LL << 40; break;
      case 'p': mult = 1LL << 50; break;
      default: mult = 0;
    }
    if (mult) rest.erase(0, 1);
    else mult = 1;
  }
  if (!rest.empty() && (rest[0] == 'i' || rest[0] == 'I')) rest.erase(0, 1);
  if (!rest.empty() && (rest[0] == 'b' || rest[0] == 'B')) rest.erase(0, 1);
  if (!rest.empty()) return std::nullopt;
  // "1.2.3" parses as Go's ParseFloat would fail; accept only one '.'.
  if (std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
  double v = std::strtod(num.c_str(), nullptr);
  return static_cast<int64_t>(v * static_cast<double>(mult));
}

MountSpec parse_mount(const std::string& value, const WordExpander& expand) {
  MountSpec m;
  bool ro_auto = true;
  bool mode_set = false, uid_set = false, gid_set = false;
  static const char* kAllKeys =
      "type, from, source, target, readonly, id, sharing, required, size, mode, uid, gid, src, dst, destination, "
      "ro, rw, readwrite, env";
  for (const auto& field : csv_fields(value)) {
    auto eq = field.find('=');
    std::string key = base::to_lower(field.substr(0, eq));
    std::string v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (eq == std::string::npos) {
      if (!expand) continue;
      if (key == "readonly" || key == "ro") {
        m.readonly = true;
        ro_auto = false;
      } else if (key == "readwrite" || key == "rw") {
        m.readonly = false;
        ro_auto = false;
      } else if (key == "required") {
        if (m.type != "secret" && m.type != "ssh")
          throw base::Error("unexpected key '" + key + "' for mount type '" + m.type + "'");
        m.required = true;
      } else {
        throw base::Error("invalid field '" + field + "' must be a key=value pair");
      }
      continue;
    }
    if (expand) {
      v = expand(v);
    } else if (key == "from") {
      auto d = v.find('$');
      if (d != std::string::npos && d != v.size() - 1)
        throw base::Error("'" + key + "' doesn't support variable expansion, define alias stage instead");
    } else {
      continue;
    }
    auto bad_value = [&] { return base::Error("invalid value for " + key + ": " + v); };
    if (key == "type") {
      std::string t = base::to_lower(v);
      if (t != "bind" && t != "cache" && t != "tmpfs" && t != "secret" && t != "ssh")
        throw base::Error("unsupported mount type \"" + v + "\"");
      m.type = t;
    } else if (key == "from") {
      m.from = v;
    } else if (key == "source" || key == "src") {
      m.source = v;
    } else if (key == "target" || key == "dst" || key == "destination") {
      m.target = v;
    } else if (key == "readonly" || key == "ro") {
      auto b = parse_bool(v);
      if (!b) throw bad_value();
      m.readonly = *b;
      ro_auto = false;
    } else if (key == "readwrite" || key == "rw") {
      auto b = parse_bool(v);
      if (!b) throw bad_value();
      m.readonly = !*b;
      ro_auto = false;
    } else if (key == "required") {
      if (m.type != "secret" && m.type != "ssh")
        throw base::Error("unexpected key '" + key + "' for mount type '" + m.type + "'");
      auto b = parse_bool(v);
      if (!b) throw bad_value();
      m.required = *b;
    } else if (key == "size") {
      if (m.type != "tmpfs") throw base::Error("unexpected key '" + key + "' for mount type '" + m.type + "'");
      auto n = ram_in_bytes(v);
      if (!n) throw bad_value();
      m.size = *n;
    } else if (key == "id") {
      m.id = v;
    } else if (key == "sharing") {
      std::string s = base::to_lower(v);
      if (s != "shared" && s != "private" && s != "locked")
        throw base::Error("unsupported sharing value \"" + v + "\"");
      m.sharing = s;
    } else if (key == "mode") {
      auto n = parse_uint(v, 8);
      if (!n) throw base::Error("invalid value " + v + " for mode");
      m.mode = *n;
      mode_set = true;
    } else if (key == "uid" || key == "gid") {
      auto n = parse_uint(v, 10);
      if (!n) throw base::Error("invalid value " + v + " for " + key);
      (key == "uid" ? m.uid : m.gid) = *n;
      (key == "uid" ? uid_set : gid_set) = true;
    } else if (key == "env") {
      m.env = v;
    } else {
      throw base::Error("unexpected key '" + key + "' in '" + field + "' (known keys: " + kAllKeys + ")");
    }
  }
  if (!expand) return m;
  bool file_info = m.type == "secret" || m.type == "ssh" || m.type == "cache";
  if (!file_info) {
    if (mode_set) throw base::Error("mode not allowed for \"" + m.type + "\" type mounts");
    if (uid_set) throw base::Error("uid not allowed for \"" + m.type + "\" type mounts");
    if (gid_set) throw base::Error("gid not allowed for \"" + m.type + "\" type mounts");
  }
  // BuildKit reads `env` of any mount and uses it only for secrets; here it is refused
  // where it would be ignored.
  if (m.env && m.type != "secret") throw base::Error("unexpected key 'env' for mount type '" + m.type + "'");
  if (ro_auto) m.readonly = !(m.type == "cache" || m.type == "tmpfs");
  if (m.type == "secret") {
    if (!m.from.empty()) throw base::Error("secret mount should not have a from");
    if (!m.sharing.empty()) throw base::Error("secret mount should not define sharing");
    if (m.source.empty() && m.target.empty() && m.id.empty())
      throw base::Error("invalid secret mount. one of source, target required");
    if (!m.source.empty() && !m.id.empty()) throw base::Error("both source and id can't be set");
  }
  if (!m.sharing.empty() && m.type != "cache")
    throw base::Error("invalid cache sharing set for " + m.type + " mount");
  return m;
}

void check_all_flags(const std::vector<ast::Instruction>& instructions) {
  for (const auto& ins : instructions) {
    if (ins.name == "onbuild") continue;  // the trigger is checked where it runs
    InstructionFlags f = parse_flags(ins);
    if (ins.name != "run") continue;
    std::string network = f.str("network", "default");
    if (network != "default" && network != "none" && network != "host")
      fail(ins, "invalid network mode \"" + network + "\"");
    std::string security = f.str("security", "sandbox");
    if (security != "sandbox" && security != "insecure") fail(ins, "security \"" + security + "\" is not valid");
    for (const auto& m : f.list("mount")) {
      try {
        parse_mount(m, nullptr);
      } catch (const base::Error& e) {
        fail(ins, e.message());
      }
    }
  }
}

}  // namespace builder::frontend::detail
