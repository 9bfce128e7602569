// frontend/instruction_flags.h — the flags each instruction accepts, parsed as BuildKit's
// BFlags does (`--name=value`, booleans with an optional `=true|false`, repeatable list
// flags), and RUN's `--mount` values. Internal to the frontend: lowering asks for the
// values; the up-front check refuses a bad flag anywhere in the file, as BuildKit parses
// every instruction of every stage before it builds any.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "frontend/ast.h"

namespace builder::frontend::detail {

/// The flags one instruction was given.
class InstructionFlags {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  /// A string flag's value, or `def` when absent.
  std::string str(const std::string& name, const std::string& def = "") const;
  /// A boolean flag: true when given as `--name` or `--name=true` (any case).
  bool boolean(const std::string& name) const;
  /// Every value of a repeatable flag, in order.
  std::vector<std::string> list(const std::string& name) const;

 private:
  friend InstructionFlags parse_flags(const ast::Instruction& ins);
  std::map<std::string, std::vector<std::string>> values_;
};

/// Parses `ins.flags` against the flags its instruction declares. Throws base::Error
/// at the instruction with BuildKit's messages ("unknown flag: --x", "duplicate flag
/// specified: --x", "missing a value on flag: --x", "expecting boolean value for flag
/// --x, not: y").
InstructionFlags parse_flags(const ast::Instruction& ins);

/// RUN --mount=... as BuildKit's parseMount reads it.
struct MountSpec {
  std::string type = "bind";  ///< bind, cache, tmpfs, secret, ssh
  std::string from, source, target, id, sharing;
  bool readonly = true;
  bool required = false;
  int64_t size = 0;  ///< tmpfs size in bytes, 0 = unlimited
  std::optional<std::string> env;
  std::optional<uint32_t> mode, uid, gid;
};

/// Expands one word of a flag value.
using WordExpander = std::function<std::string(const std::string&)>;

/// Parses one --mount value (CSV fields `key=value` or bare `ro`/`rw`/`required`), each
/// value expanded by `expand`. Without an expander (the up-front check) only the syntax
/// and the `from` field are checked. Throws base::Error (without location) with
/// BuildKit's messages; the caller adds the instruction's.
MountSpec parse_mount(const std::string& value, const WordExpander& expand);

/// Splits a CSV record as Go's encoding/csv does for one line (quotes with `""`).
std::vector<std::string> csv_fields(const std::string& value);

/// Go's units.RAMInBytes: "64m", "1.5g", "1024" (binary multiples, case-insensitive).
std::optional<int64_t> ram_in_bytes(const std::string& s);

/// Checks every instruction of `instructions` (and ONBUILD's wrapped one) for flags it
/// does not accept and for bad `--mount` syntax, without expanding anything.
void check_all_flags(const std::vector<ast::Instruction>& instructions);

}  // namespace builder::frontend::detail
