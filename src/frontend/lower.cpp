// Lowering driver: splits the AST into global ARGs and stages, resolves the target,
// lowers only the stages it reaches (on demand, dependencies first so every input index
// is smaller than its user's), and handles FROM, RUN and WORKDIR. BuildKit's
// dockerfile2llb (convert.go) is the reference for every name, message and history
// string here.
#include <algorithm>
#include <cmath>

#include "base/strings.h"
#include "frontend/instruction_flags.h"
#include "frontend/lower_internal.h"
#include "frontend/parse.h"

namespace builder::frontend {
namespace detail {

namespace {
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kHistoryComment = "buildkit.dockerfile.v0";

bool counts_as_step(const std::string& n) {
  return n == "add" || n == "copy" || n == "run" || n == "workdir";
}

std::string flag_name(const std::string& flag) {
  std::string n = flag.substr(flag.rfind('-', 1) == 1 ? 2 : 0);
  auto eq = n.find('=');
  return eq == std::string::npos ? n : n.substr(0, eq);
}
}  // namespace

void add_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env) {
    if (e.substr(0, e.find('=')) == key) {
      e = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

std::string go_quote_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + go_quote(v[i]);
  return s + "]";
}

std::string go_list(const std::vector<std::string>& v) { return "[" + base::join(v, " ") + "]"; }

std::string normalize_workdir(const std::string& current, const std::string& wd) {
  std::string parent = current.empty() ? "/" : current;
  if (parent[0] != '/') parent = base::clean_path("/" + parent);
  std::string p = wd.empty() ? parent : wd;
  if (p[0] != '/') p = base::clean_path(parent + "/" + p);
  return p;
}

std::string onbuild_expression(const ast::Instruction& ins) {
  // parseOnBuild: regexp `(?i)^\s*ONBUILD\s*` removed from the original line.
  std::string_view o = ins.original;
  size_t i = 0;
  while (i < o.size() && std::isspace(static_cast<unsigned char>(o[i]))) ++i;
  if (o.size() - i >= 7 && base::to_lower(o.substr(i, 7)) == "onbuild") {
    i += 7;
    while (i < o.size() && std::isspace(static_cast<unsigned char>(o[i]))) ++i;
  } else {
    i = 0;
  }
  std::string expr(o.substr(i));
  for (const auto& h : ins.heredocs) expr += "\n" + h.content + h.name;
  return expr;
}

Lowerer::Lowerer(const ast::File& file, const LowerOptions& opts, ImageResolver& resolver)
    : file_(file), opts_(opts), resolver_(resolver) {
  shell_.escape = file.directives.escape;
  std::string platform = opts.os + "/" + opts.architecture;
  // defaultArgs: --build-arg overrides these too.
  builtin_args_ = {{"BUILDPLATFORM", platform},      {"BUILDOS", opts.os},
                   {"BUILDOSVERSION", ""},           {"BUILDARCH", opts.architecture},
                   {"BUILDVARIANT", ""},             {"TARGETPLATFORM", platform},
                   {"TARGETOS", opts.os},            {"TARGETOSVERSION", ""},
                   {"TARGETARCH", opts.architecture}, {"TARGETVARIANT", ""},
                   {"TARGETSTAGE", opts.target.empty() ? "default" : opts.target}};
  for (auto& [k, v] : builtin_args_) {
    auto o = opts.build_args.find(k);
    if (o != opts.build_args.end()) v = o->second;
  }
}

void Lowerer::fail(const ast::Instruction& ins, const std::string& msg) const {
  throw base::Error(msg, ins.range);
}

int Lowerer::add_vertex(graph::Op op, std::vector<int> inputs, const ast::Instruction* ins,
                        std::string name, const Stage& st) {
  result_.definition.vertices.push_back(graph::Vertex{std::move(op), std::move(inputs)});
  graph::SourceInfo info;
  if (ins) info.range = ins->range;
  info.name = std::move(name);
  info.stage = st.name.empty() ? std::to_string(st.index) : st.name;
  result_.source_map.push_back(std::move(info));
  return static_cast<int>(result_.definition.vertices.size()) - 1;
}

std::string Lowerer::progress_name(Stage& st, const std::string& text) {
  if (st.cmd_total == 0) return text;
  std::string out = "[";
  if (!st.label.empty()) out += st.label + " ";
  ++st.cmd_index;
  int width = static_cast<int>(1 + std::log10(static_cast<double>(st.cmd_total)));
  std::string idx = std::to_string(st.cmd_index);
  if (static_cast<int>(idx.size()) < width) idx = std::string(width - idx.size(), ' ') + idx;
  out += idx + "/" + std::to_string(st.cmd_total) + "] ";
  if (st.in_trigger) out += "ONBUILD ";
  return out + text;
}

std::string Lowerer::display_text(const Stage& st, const ast::Instruction& ins) const {
  // BuildKit: uppercaseCmd(processCmdEnv(shlex{RawQuotes, SkipUnsetEnv}, original)).
  std::string text(base::trim(ins.original));
  ShellOptions o = shell_;
  o.raw_quotes = true;
  o.skip_unset_env = true;
  try {
    text = process_word(text, env_of(st), o);
  } catch (const base::Error&) {
  }
  auto sp = text.find(' ');
  std::string head = sp == std::string::npos ? text : text.substr(0, sp);
  for (auto& c : head) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return sp == std::string::npos ? head : head + text.substr(sp);
}

EnvLookup Lowerer::env_of(const Stage& st) const { return env_from_list(st.run_env); }

std::string Lowerer::expand_word(const Stage& st, const ast::Instruction& ins,
                                 const std::string& w) const {
  try {
    return process_word(w, env_of(st), shell_);
  } catch (const base::Error& e) {
    fail(ins, e.message());
  }
}

std::vector<std::string> Lowerer::expand_words(const Stage& st, const ast::Instruction& ins,
                                               const std::string& w) const {
  try {
    return process_words(w, env_of(st), shell_);
  } catch (const base::Error& e) {
    fail(ins, e.message());
  }
}

void Lowerer::commit(Stage& st, std::string created_by, bool with_layer, bool buildkit_suffix) {
  graph::History h;
  h.created_by = std::move(created_by);
  if (buildkit_suffix) h.created_by += " # buildkit";
  h.comment = kHistoryComment;
  h.empty_layer = !with_layer;
  st.history.push_back(std::move(h));
}

std::vector<std::string> Lowerer::with_shell(const Stage& st,
                                             const std::vector<std::string>& args) const {
  std::vector<std::string> out;
  if (st.config.contains("Shell") && st.config["Shell"].is_array() && !st.config["Shell"].empty())
    out = st.config["Shell"].get<std::vector<std::string>>();
  else
    out = {"/bin/sh", "-c"};
  out.push_back(base::join(args, " "));
  return out;
}

std::string Lowerer::working_dir(const Stage& st) const {
  // The config keeps an absolute WORKDIR as written ("/a/./b/"), as BuildKit does; the
  // ops get it cleaned, which names the same directory.
  if (st.config.contains("WorkingDir") && st.config["WorkingDir"].is_string()) {
    std::string wd = st.config["WorkingDir"];
    if (!wd.empty()) return base::clean_path(wd);
  }
  return "/";
}

void Lowerer::add_triggers(Stage& st, const std::vector<std::string>& exprs) {
  // initOnBuildTriggers: each trigger is parsed on its own (default escape) and runs
  // before the stage's instructions, located at the stage's FROM.
  for (const auto& e : exprs) {
    ast::File f;
    try {
      f = parse(e, file_.filename);
    } catch (const base::Error& err) {
      fail(*st.from, err.message());
    }
    if (f.instructions.size() != 1) fail(*st.from, "onbuild trigger should be a single expression");
    auto ins = std::make_unique<ast::Instruction>(std::move(f.instructions[0]));
    ins->range = st.from->range;
    if (ins->onbuild) ins->onbuild->range = st.from->range;
    st.triggers.push_back(std::move(ins));
  }
  st.cmd_total += static_cast<int>(exprs.size());
}

Stage* Lowerer::find_stage(const std::string& name_or_index, int before) {
  std::string n = base::to_lower(name_or_index);
  for (auto& s : stages_)
    if (!s.name.empty() && s.name == n && s.index < before) return &s;
  if (!n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    size_t i = std::stoul(n);
    if (i < stages_.size() && static_cast<int>(i) < before) return &stages_[i];
  }
  return nullptr;
}

}  // namespace detail

std::string named_context_key(const std::string& name) {
  // BuildKit: reference.FamiliarString(ParseNormalizedNamed(name)) without ":latest".
  std::string n = name;
  for (const char* prefix : {"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"})
    if (n.rfind(prefix, 0) == 0 && n.find('/', std::string(prefix).size()) == std::string::npos) {
      n = n.substr(std::string(prefix).size());
      break;
    }
  if (n.size() > 7 && n.compare(n.size() - 7, 7, ":latest") == 0) n = n.substr(0, n.size() - 7);
  return n;
}

namespace detail {

const NamedContext* Lowerer::named_context(const std::string& name) const {
  if (opts_.named_contexts.empty()) return nullptr;
  const std::string key = named_context_key(name);
  for (const auto& [n, nc] : opts_.named_contexts)
    if (named_context_key(n) == key) return &nc;
  return nullptr;
}

ResolvedImage Lowerer::resolve_context_image(const ast::Instruction& ins, const NamedContext& nc,
                                             const std::string& name) {
  try {
    return resolver_.resolve(nc.image_ref);
  } catch (base::Error& e) {
    fail(ins, "build context \"" + name + "\": " + e.message());
  }
}

int Lowerer::context_source(const Stage& st, const ast::Instruction& ins, const NamedContext& nc,
                            const std::string& name) {
  if (nc.kind == NamedContext::Kind::Image) {
    ResolvedImage img = resolve_context_image(ins, nc, name);
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Image;
    src.ref = img.ref;
    src.digest = img.digest;
    return add_vertex(src, {}, &ins, "[context " + name + "] " + img.ref, st);
  }
  graph::SourceOp src;
  src.kind = graph::SourceOp::Kind::Local;
  src.local_name = nc.local_name;
  src.exclude_patterns = nc.excludes;
  return add_vertex(src, {}, &ins, "[context " + name + "] load from client", st);
}

int Lowerer::image_source(const Stage& st, const ast::Instruction& ins, const std::string& ref) {
  // A named context stands for the image of its name (BuildKit: COPY --from and
  // --mount from= of a non-stage go through the same lookup as FROM).
  if (const NamedContext* nc = named_context(ref)) return context_source(st, ins, *nc, ref);
  ResolvedImage img;
  try {
    img = resolver_.resolve(ref);
  } catch (base::Error& e) {
    fail(ins, e.message());
  }
  graph::SourceOp src;
  src.kind = graph::SourceOp::Kind::Image;
  src.ref = img.ref;
  src.digest = img.digest;
  return add_vertex(src, {}, &ins, "FROM " + img.ref, st);
}

namespace {

std::vector<graph::History> history_from_config(const base::Json& img) {
  std::vector<graph::History> out;
  if (!img.contains("history") || !img["history"].is_array()) return out;
  for (const auto& h : img["history"]) {
    graph::History e;
    if (h.contains("created_by") && h["created_by"].is_string()) e.created_by = h["created_by"];
    if (h.contains("comment") && h["comment"].is_string()) e.comment = h["comment"];
    if (h.contains("empty_layer") && h["empty_layer"].is_boolean()) e.empty_layer = h["empty_layer"];
    if (h.contains("created") && h["created"].is_string()) e.created = h["created"];
    if (h.contains("author") && h["author"].is_string()) e.author = h["author"];
    out.push_back(std::move(e));
  }
  return out;
}

bool has_path(const base::Json& config) {
  if (!config.contains("Env") || !config["Env"].is_array()) return false;
  for (const auto& e : config["Env"])
    if (e.is_string() && e.get<std::string>().rfind("PATH=", 0) == 0) return true;
  return false;
}

}  // namespace

void Lowerer::init_from_image(Stage& st, const ast::Instruction& from, const ResolvedImage& img,
                              const std::string& prefix) {
  st.config = img.config.contains("config") && img.config["config"].is_object()
                  ? img.config["config"]
                  : base::Json::object();
  st.history = history_from_config(img.config);
  st.os = img.config.value("os", opts_.os);
  st.architecture = img.config.value("architecture", opts_.architecture);
  st.variant = img.config.value("variant", "");
  st.author = img.config.value("author", "");
  graph::SourceOp src;
  src.kind = graph::SourceOp::Kind::Image;
  src.ref = img.ref;
  src.digest = img.digest;
  st.vertex = add_vertex(src, {}, &from, progress_name(st, prefix + "FROM " + img.ref), st);
}

void Lowerer::init_from_context(Stage& st, const ast::Instruction& from, const NamedContext& nc,
                                const std::string& name) {
  if (nc.kind == NamedContext::Kind::Image) {
    init_from_image(st, from, resolve_context_image(from, nc, name), "[context " + name + "] ");
    return;
  }
  // A directory as a root file system: its files copied onto an empty state (a layer
  // of its own, so RUN can stack on it), on the empty image config of `scratch`.
  graph::SourceOp scratch;
  scratch.kind = graph::SourceOp::Kind::Scratch;
  int empty = add_vertex(scratch, {}, &from, "scratch", st);
  int files = context_source(st, from, nc, name);
  graph::CopyAction cp;
  cp.src_input = 1;
  cp.src_paths = {"/"};
  cp.dest = "/";
  cp.allow_wildcard = false;
  graph::FileOp op;
  op.actions.push_back(cp);
  st.vertex = add_vertex(op, {empty, files}, &from, progress_name(st, "[context " + name + "] copy to rootfs"), st);
  st.config = base::Json::object();
  st.config["WorkingDir"] = "/";
  st.history.clear();
  st.os = opts_.os;
  st.architecture = opts_.architecture;
  if (!has_path(st.config)) st.config["Env"] = base::Json::array({std::string("PATH=") + kDefaultPath});
  st.run_env = {std::string("PATH=") + kDefaultPath};
}

void Lowerer::ensure_lowered(Stage& st, const ast::Instruction* needed_by) {
  if (st.state == Stage::State::Done) return;
  if (st.state == Stage::State::InProgress)
    fail(needed_by ? *needed_by : *st.from, "circular dependency detected on stage: " +
                                                (st.name.empty() ? std::to_string(st.index) : st.name));
  st.state = Stage::State::InProgress;
  const ast::Instruction& from = *st.from;
  // BuildKit: a named context of the stage's own name replaces the whole stage; its
  // instructions are not run.
  if (!st.name.empty()) {
    if (const NamedContext* nc = named_context(st.name)) {
      st.cmd_total = 0;
      init_from_context(st, from, *nc, st.name);
      st.state = Stage::State::Done;
      return;
    }
  }
  // Stages this one copies from are lowered first, so the graph reads in build order.
  for (const ast::Instruction* c : st.commands) {
    if (c->name != "copy") continue;
    for (const auto& f : c->flags)
      if (f.rfind("--from=", 0) == 0)
        if (Stage* dep = find_stage(f.substr(7), st.index)) ensure_lowered(*dep, c);
  }

  // FROM [--platform=...] image [AS name], expanded with the global ARGs only.
  std::vector<std::string> global_env;
  for (auto& [k, v] : builtin_args_) global_env.push_back(k + "=" + v);
  for (auto& a : global_args_)
    if (a.value) add_env(global_env, a.key, *a.value);
  for (const auto& f : from.flags) {
    std::string name = flag_name(f);
    if (name != "platform") fail(from, "FROM --" + name + " is not supported yet");
    std::string v = f.substr(f.find('=') == std::string::npos ? f.size() : f.find('=') + 1);
    std::string p;
    try {
      p = process_word(v, env_from_list(global_env), shell_);
    } catch (const base::Error& e) {
      fail(from, e.message());
    }
    if (!p.empty() && p != opts_.os + "/" + opts_.architecture)
      fail(from, "FROM --platform=" + p + " is not supported yet (only " + opts_.os + "/" +
                     opts_.architecture + ")");
  }
  std::string base_name;
  try {
    base_name = process_word(from.args[0], env_from_list(global_env), shell_);
  } catch (const base::Error& e) {
    fail(from, e.message());
  }
  if (base_name.empty()) fail(from, "base name (" + from.args[0] + ") should not be blank");

  int total = 0;
  Stage* base_stage = find_stage(base_name, st.index);
  const NamedContext* base_context = base_stage ? nullptr : named_context(base_name);
  if (base_name != "scratch" && !base_stage) total = 1;
  for (auto* c : st.commands)
    if (counts_as_step(c->name)) ++total;
  st.cmd_total = total;

  if (base_stage) {
    ensure_lowered(*base_stage, &from);
    st.vertex = base_stage->vertex;
    st.config = base_stage->config;
    st.history = base_stage->history;
    st.run_env = base_stage->run_env;
    st.build_args = base_stage->build_args;  // as BuildKit >= 0.15 (dispatchState.init)
    st.os = base_stage->os;
    st.architecture = base_stage->architecture;
    st.variant = base_stage->variant;
    st.author = base_stage->author;
  } else if (base_context) {
    init_from_context(st, from, *base_context, base_name);
  } else if (base_name == "scratch") {
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Scratch;
    st.vertex = add_vertex(src, {}, &from, "FROM scratch", st);
    // emptyImage: WorkingDir "/" and the default PATH (added below).
    st.config = base::Json::object();
    st.config["WorkingDir"] = "/";
    st.os = opts_.os;
    st.architecture = opts_.architecture;
  } else {
    ResolvedImage img;
    try {
      img = resolver_.resolve(base_name);
    } catch (base::Error& e) {
      fail(from, e.message());
    }
    init_from_image(st, from, img);
  }
  // ONBUILD: an image's triggers come from its config; a stage's from its own ONBUILD
  // instructions (a stage base never passes on the triggers it ran itself).
  std::vector<std::string> triggers;
  if (base_stage) {
    for (const ast::Instruction* c : base_stage->commands)
      if (c->name == "onbuild") triggers.push_back(onbuild_expression(*c));
  } else if (st.config.contains("OnBuild") && st.config["OnBuild"].is_array()) {
    for (const auto& t : st.config["OnBuild"])
      if (t.is_string()) triggers.push_back(t.get<std::string>());
  }
  st.config.erase("OnBuild");
  add_triggers(st, triggers);
  // A base's WorkingDir goes through dispatchWorkdir like any WORKDIR.
  if (st.config.contains("WorkingDir") && st.config["WorkingDir"].is_string()) {
    std::string wd = st.config["WorkingDir"];
    if (!wd.empty()) st.config["WorkingDir"] = normalize_workdir(wd, wd);
  }
  if (!base_stage) {
    if (!has_path(st.config)) {
      if (!st.config.contains("Env") || !st.config["Env"].is_array())
        st.config["Env"] = base::Json::array();
      st.config["Env"].push_back(std::string("PATH=") + kDefaultPath);
    }
    st.run_env.clear();
    for (const auto& e : st.config["Env"])
      if (e.is_string()) {
        std::string s = e;
        auto eq = s.find('=');
        add_env(st.run_env, s.substr(0, eq), eq == std::string::npos ? "" : s.substr(eq + 1));
      }
  }

  std::vector<const ast::Instruction*> all;
  for (const auto& t : st.triggers) all.push_back(t.get());
  all.insert(all.end(), st.commands.begin(), st.commands.end());
  for (size_t i = 0; i < all.size(); ++i) {
    const ast::Instruction& ins = *all[i];
    const std::string& n = ins.name;
    st.in_trigger = i < st.triggers.size();
    lint_instruction(st, ins);
    if (n == "run") lower_run(st, ins);
    else if (n == "workdir") lower_workdir(st, ins);
    else if (n == "copy" || n == "add") lower_copy(st, ins);
    else if (n == "arg") lower_arg(st, ins);
    else if (n == "env" || n == "label" || n == "cmd" || n == "entrypoint" || n == "expose" ||
             n == "user" || n == "volume" || n == "stopsignal" || n == "shell" ||
             n == "healthcheck" || n == "maintainer" || n == "onbuild")
      lower_config(st, ins);
    else if (n == "from") fail(ins, "internal error: FROM inside a stage");
    else fail(ins, "unknown instruction: " + ins.keyword);
  }
  st.in_trigger = false;
  st.state = Stage::State::Done;
}

void Lowerer::lower_run(Stage& st, const ast::Instruction& ins) {
  InstructionFlags flags = parse_flags(ins);
  graph::ExecOp op;
  std::vector<int> inputs{st.vertex};
  const std::string network = flags.str("network", "default");
  if (network == "none") op.network = graph::NetworkMode::None;
  if (network == "host") {
    if (std::find(opts_.allow.begin(), opts_.allow.end(), "network.host") == opts_.allow.end())
      fail(ins, "RUN --network=host needs the entitlement network.host: pass --allow network.host");
    op.network = graph::NetworkMode::Host;
  }
  if (flags.str("security", "sandbox") == "insecure") {
    if (std::find(opts_.allow.begin(), opts_.allow.end(), "security.insecure") == opts_.allow.end())
      fail(ins, "RUN --security=insecure needs the entitlement security.insecure: pass --allow security.insecure");
    op.insecure = true;
  }
  for (const auto& value : flags.list("mount")) add_run_mount(st, ins, value, op, inputs);

  std::vector<std::string> args = ins.args;
  bool shell_form = !ins.json_form;
  std::string summary;
  if (!ins.heredocs.empty()) {
    if (args.size() != 1 || !shell_form)
      fail(ins, "parsing produced an invalid run command: " + go_list(args));
    if (parse_heredoc_word(args[0])) {
      const ast::Heredoc& doc = ins.heredocs[0];
      std::string data = doc.chomp ? chomp_heredoc(doc.content) : doc.content;
      if (data.rfind("#!", 0) == 0) {
        // A script with its own interpreter: written to a file on an empty state,
        // mounted read-only at /dev/pipes/ and run from there.
        graph::SourceOp scratch;
        scratch.kind = graph::SourceOp::Kind::Scratch;
        int empty = add_vertex(scratch, {}, &ins, "scratch", st);
        graph::FileOp mk;
        mk.actions.push_back(graph::MkfileAction{"/" + doc.name, data, 0755, ""});
        int file = add_vertex(mk, {empty}, &ins, "preparing inline document", st);
        graph::ExecMount m;
        m.kind = graph::ExecMount::Kind::Bind;
        m.target = "/dev/pipes";
        m.input = static_cast<int>(inputs.size());
        m.source = "/";
        m.readonly = true;
        inputs.push_back(file);
        op.mounts.push_back(m);
        args = {"/dev/pipes/" + doc.name};
      } else {
        args = {data};
      }
      summary = summarize_heredoc(doc.content);
    } else {
      std::string b = args[0];
      for (const auto& h : ins.heredocs) b += "\n" + h.content + h.name;
      args = {b};
    }
  }
  if (shell_form) args = with_shell(st, args);
  if (args.empty()) fail(ins, "RUN requires at least one argument");

  op.args = args;
  op.env = st.run_env;
  op.cwd = working_dir(st);
  op.user = st.config.value("User", "");
  std::string name = progress_name(st, display_text(st, ins) + (summary.empty() ? "" : " (" + summary + ")"));
  st.vertex = add_vertex(op, inputs, &ins, name, st);

  // runCommandString: "|N K=V ..." for the stage's ARGs, then the args.
  std::vector<std::string> build_env;
  std::map<std::string, size_t> idx;
  auto env = env_of(st);
  for (const auto& a : st.build_args) {
    auto v = env(a.key);
    std::string val = v ? *v : a.value.value_or("");
    auto it = idx.find(a.key);
    if (it != idx.end()) build_env[it->second] = a.key + "=" + val;
    else {
      idx[a.key] = build_env.size();
      build_env.push_back(a.key + "=" + val);
    }
  }
  std::vector<std::string> parts;
  if (!build_env.empty()) {
    parts.push_back("|" + std::to_string(build_env.size()));
    parts.insert(parts.end(), build_env.begin(), build_env.end());
  }
  parts.insert(parts.end(), args.begin(), args.end());
  commit(st, "RUN " + base::join(parts, " "), true, true);
}

void Lowerer::lower_workdir(Stage& st, const ast::Instruction& ins) {
  if (!ins.flags.empty()) fail(ins, "WORKDIR --" + flag_name(ins.flags[0]) + " is not supported yet");
  if (ins.args.empty()) fail(ins, "WORKDIR requires exactly one argument");
  std::string p = expand_word(st, ins, ins.args[0]);
  std::string wd = normalize_workdir(st.config.value("WorkingDir", ""), p);
  st.config["WorkingDir"] = wd;
  bool layer = false;
  if (wd != "/") {
    graph::FileOp op;
    graph::MkdirAction mk;
    mk.path = base::clean_path(wd);
    mk.mode = 0755;
    mk.make_parents = true;
    mk.chown = st.config.value("User", "");
    op.actions.push_back(mk);
    std::string name = progress_name(st, display_text(st, ins));
    st.vertex = add_vertex(op, {st.vertex}, &ins, name, st);
    layer = true;
  }
  commit(st, "WORKDIR " + wd, layer, false);
}

LowerResult Lowerer::run() {
  lint_begin();
  // Split: ARGs before the first FROM are global; each FROM starts a stage.
  std::map<std::string, std::string> seen_global;
  for (const auto& ins : file_.instructions) {
    if (ins.name == "from") {
      Stage s;
      s.index = static_cast<int>(stages_.size());
      s.from = &ins;
      if (ins.args.empty()) fail(ins, "FROM requires either one or three arguments");
      if (ins.args.size() == 3 && base::to_lower(ins.args[1]) == "as") {
        s.name = base::to_lower(ins.args[2]);
      } else if (ins.args.size() != 1) {
        fail(ins, "FROM requires either one or three arguments");
      }
      if (!s.name.empty()) {
        for (auto& o : stages_)
          if (o.name == s.name) fail(ins, "duplicate stage name \"" + s.name + "\"");
      }
      stages_.push_back(std::move(s));
      continue;
    }
    if (stages_.empty()) {
      if (ins.name != "arg") fail(ins, "no build stage in current context");
      // Global ARG: default expanded with the built-in ARGs and earlier global ARGs
      // (buildMetaArgs); --build-arg overrides.
      std::vector<std::string> env;
      for (auto& [k, v] : builtin_args_) env.push_back(k + "=" + v);
      for (auto& a : global_args_)
        if (a.value) add_env(env, a.key, *a.value);
      for (const auto& w : ins.args) {
        BuildArg a;
        auto eq = w.find('=');
        a.key = w.substr(0, eq);
        if (eq != std::string::npos) {
          try {
            a.value = process_word(w.substr(eq + 1), env_from_list(env), shell_);
          } catch (const base::Error& e) {
            fail(ins, e.message());
          }
        }
        auto bo = opts_.build_args.find(a.key);
        if (bo != opts_.build_args.end()) a.value = bo->second;
        global_args_.push_back(a);
        if (a.value) add_env(env, a.key, *a.value);
      }
      continue;
    }
    stages_.back().commands.push_back(&ins);
  }
  if (stages_.empty()) throw base::Error("the Dockerfile has no FROM instruction", std::nullopt);
  // As BuildKit, every instruction's flags are checked, in stages the target needs or not.
  check_all_flags(file_.instructions);
  for (auto& s : stages_) {
    s.label = s.name.empty() ? "stage-" + std::to_string(s.index) : s.name;
    if (stages_.size() == 1) s.label.clear();
  }
  lint_stages();

  Stage* target = &stages_.back();
  if (!opts_.target.empty()) {
    target = nullptr;
    std::string t = base::to_lower(opts_.target);
    for (auto& s : stages_)
      if (s.name == t) target = &s;
    if (!target) throw base::Error("target stage \"" + opts_.target + "\" could not be found");
  }
  ensure_lowered(*target, nullptr);
  if (opts_.all_stages)
    for (auto& s : stages_) ensure_lowered(s, nullptr);
  lint_end(*target);

  auto& def = result_.definition;
  def.result = target->vertex;
  def.image.config = normalize_config(target->config);
  def.image.history = target->history;
  def.image.os = target->os;
  def.image.architecture = target->architecture;
  def.image.variant = target->variant;
  def.image.author = target->author;
  return std::move(result_);
}

}  // namespace detail

LowerResult lower(const ast::File& file, const LowerOptions& options, ImageResolver& resolver) {
  detail::Lowerer l(file, options, resolver);
  return l.run();
}

}  // namespace builder::frontend
