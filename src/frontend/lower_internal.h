// frontend/lower_internal.h — the state lowering keeps per stage, shared by lower.cpp
// (stages, FROM, RUN, WORKDIR), lower_copy.cpp (COPY) and lower_config.cpp (config-only
// instructions). Internal to the frontend.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frontend/expand.h"
#include "frontend/lint_internal.h"
#include "frontend/lower.h"

namespace builder::frontend::detail {

struct BuildArg {
  std::string key;
  std::optional<std::string> value;
};

struct Stage {
  std::string name;  ///< AS name, lower-cased; empty when unnamed
  std::string label; ///< progress label: name, "stage-N", or "" for a single-stage file
  int index = 0;
  const ast::Instruction* from = nullptr;
  std::vector<const ast::Instruction*> commands;

  // Lowering state.
  enum class State { Pending, InProgress, Done } state = State::Pending;
  int vertex = -1;
  base::Json config = base::Json::object();
  std::vector<graph::History> history;
  std::vector<std::string> run_env;  ///< env of the build state: config Env plus ARGs
  std::vector<BuildArg> build_args;  ///< ARGs declared in this stage, in order
  std::string os, architecture, variant, author;
  bool cmd_set = false;  ///< CMD seen in this stage: a later ENTRYPOINT keeps it
  int cmd_index = 0, cmd_total = 0;
  /// ONBUILD triggers of the base, parsed; they run before `commands`. Owned here
  /// because the instructions of a parsed trigger outlive the text they came from.
  std::vector<std::unique_ptr<ast::Instruction>> triggers;
  bool in_trigger = false;  ///< lowering a trigger: progress names say "ONBUILD"
  StageLint lint;           ///< build-check and outline state (lower_lint.cpp)
};

class Lowerer {
 public:
  Lowerer(const ast::File& file, const LowerOptions& opts, ImageResolver& resolver);
  LowerResult run();

  // Shared helpers (lower.cpp).
  [[noreturn]] void fail(const ast::Instruction& ins, const std::string& msg) const;
  int add_vertex(graph::Op op, std::vector<int> inputs, const ast::Instruction* ins,
                 std::string name, const Stage& st);
  std::string progress_name(Stage& st, const std::string& text);
  std::string display_text(const Stage& st, const ast::Instruction& ins) const;
  EnvLookup env_of(const Stage& st) const;
  std::string expand_word(const Stage& st, const ast::Instruction& ins, const std::string& w) const;
  std::vector<std::string> expand_words(const Stage& st, const ast::Instruction& ins,
                                        const std::string& w) const;
  void commit(Stage& st, std::string created_by, bool with_layer, bool buildkit_suffix);
  std::vector<std::string> with_shell(const Stage& st, const std::vector<std::string>& args) const;
  Stage* find_stage(const std::string& name_or_index, int before) ;
  /// A Source vertex for the image `ref` (COPY --from, RUN --mount from=), resolved
  /// through the resolver; an unknown image fails at `ins`.
  int image_source(const Stage& st, const ast::Instruction& ins, const std::string& ref);
  void ensure_lowered(Stage& st, const ast::Instruction* needed_by);
  /// The --build-context that `name` (a stage or image name) refers to, or null.
  const NamedContext* named_context(const std::string& name) const;
  /// A vertex holding a named context's files: the directory (a Local source) or the
  /// image; for COPY --from and RUN --mount from=.
  int context_source(const Stage& st, const ast::Instruction& ins, const NamedContext& nc, const std::string& name);
  /// The image a docker-image:// context names; a failure is the instruction's error.
  ResolvedImage resolve_context_image(const ast::Instruction& ins, const NamedContext& nc, const std::string& name);
  /// Starts `st` on the image `img` (FROM): its config, history and platform.
  void init_from_image(Stage& st, const ast::Instruction& from, const ResolvedImage& img,
                       const std::string& prefix = "");
  /// Starts `st` (its base named `name` at `from`) on a named context: an image's
  /// config and history, or a directory's files on an empty config.
  void init_from_context(Stage& st, const ast::Instruction& from, const NamedContext& nc, const std::string& name);
  std::string working_dir(const Stage& st) const;
  void add_triggers(Stage& st, const std::vector<std::string>& exprs);

  // Instructions.
  void lower_run(Stage& st, const ast::Instruction& ins);
  /// One RUN --mount value: appends the mount to `op` and what it mounts to `inputs`.
  void add_run_mount(Stage& st, const ast::Instruction& ins, const std::string& value, graph::ExecOp& op,
                     std::vector<int>& inputs);  // lower_run_mount.cpp
  void lower_workdir(Stage& st, const ast::Instruction& ins);
  void lower_copy(Stage& st, const ast::Instruction& ins);       // lower_copy.cpp (COPY, ADD)
  void lower_config(Stage& st, const ast::Instruction& ins);     // lower_config.cpp
  void lower_arg(Stage& st, const ast::Instruction& ins);        // lower_config.cpp

  // Build checks and the outline (lower_lint.cpp), in the order run() calls them.
  void lint_begin();                                              // options, AST-only checks
  void lint_stages();                                             // every FROM
  void lint_instruction(Stage& st, const ast::Instruction& ins);  // before each instruction
  void lint_end(const Stage& target);  // outline; throws when `error=true` and a check failed
  void lint_from_args(const ast::Instruction& from, const std::set<std::string>& unmatched,
                      const std::set<std::string>& declared, const std::vector<std::string>& keys);
  void lint_undefined(const ast::Instruction& ins, const std::set<std::string>& unmatched,
                      const std::set<std::string>& declared, const std::vector<std::string>& keys);
  void lint_ignored(const ast::Instruction& ins, const std::string& cmd, const std::string& src);

  const ast::File& file_;
  const LowerOptions& opts_;
  ImageResolver& resolver_;
  std::vector<Stage> stages_;
  std::vector<BuildArg> global_args_;
  std::map<std::string, std::string> builtin_args_;
  LowerResult result_;
  ShellOptions shell_;
  Linter linter_;
  std::map<std::string, ArgInfo> global_arg_info_;  ///< global ARGs, for the outline
};

/// BuildKit's summarizeHeredoc: the first line of a trimmed document, "..." if more.
std::string summarize_heredoc(const std::string& doc);
/// BuildKit's ChompHeredocContent: leading tabs removed from every line (`<<-EOF`).
std::string chomp_heredoc(const std::string& content);
/// "KEY=value" list edit: replace the entry with the same key in place, or append.
void add_env(std::vector<std::string>& env, const std::string& key, const std::string& value);
/// Go's fmt %q of a []string: ["a" "b"].
std::string go_quote_list(const std::vector<std::string>& v);
/// Go's fmt %v of a []string: [a b].
std::string go_list(const std::vector<std::string>& v);
/// BuildKit's NormalizeWorkdir: a relative `wd` is joined to `current` (itself made
/// absolute) and cleaned; an absolute one is kept as written; "" means `current`.
std::string normalize_workdir(const std::string& current, const std::string& wd);
/// The text an ONBUILD instruction stores in the config: the instruction line without
/// its `ONBUILD` keyword, heredoc bodies appended.
std::string onbuild_expression(const ast::Instruction& ins);
/// The image config as BuildKit marshals it: known fields only, in the Go struct's
/// order, empty ones left out, map keys sorted.
base::Json normalize_config(const base::Json& config);

}  // namespace builder::frontend::detail
