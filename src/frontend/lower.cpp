// Lowering driver: splits the AST into global ARGs and stages, resolves the target,
// lowers only the stages it reaches (on demand, dependencies first so every input index
// is smaller than its user's), and handles FROM, RUN and WORKDIR. BuildKit's
// dockerfile2llb (convert.go) is the reference for every name, message and history
// string here.
#include <algorithm>
#include <cmath>

#include "base/strings.h"
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

std::string clean_path(const std::string& p) {
  if (p.empty()) return ".";
  bool rooted = p[0] == '/';
  std::vector<std::string> out;
  for (auto& part : base::split(p, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!out.empty() && out.back() != "..") out.pop_back();
      else if (!rooted) out.push_back("..");
      continue;
    }
    out.push_back(part);
  }
  std::string r = (rooted ? "/" : "") + base::join(out, "/");
  if (r.empty()) return ".";
  return r;
}

Lowerer::Lowerer(const ast::File& file, const LowerOptions& opts, ImageResolver& resolver)
    : file_(file), opts_(opts), resolver_(resolver) {
  shell_.escape = file.directives.escape;
  std::string platform = opts.os + "/" + opts.architecture;
  builtin_args_ = {{"BUILDPLATFORM", platform},     {"BUILDOS", opts.os},
                   {"BUILDARCH", opts.architecture}, {"BUILDVARIANT", ""},
                   {"TARGETPLATFORM", platform},     {"TARGETOS", opts.os},
                   {"TARGETARCH", opts.architecture}, {"TARGETVARIANT", ""}};
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
  if (st.config.contains("WorkingDir") && st.config["WorkingDir"].is_string()) {
    std::string wd = st.config["WorkingDir"];
    if (!wd.empty()) return wd;
  }
  return "/";
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

void Lowerer::ensure_lowered(Stage& st, const ast::Instruction* needed_by) {
  if (st.state == Stage::State::Done) return;
  if (st.state == Stage::State::InProgress)
    fail(needed_by ? *needed_by : *st.from, "circular dependency detected on stage: " +
                                                (st.name.empty() ? std::to_string(st.index) : st.name));
  st.state = Stage::State::InProgress;
  const ast::Instruction& from = *st.from;
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
    if (a.value) global_env.push_back(a.key + "=" + *a.value);
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
    st.os = base_stage->os;
    st.architecture = base_stage->architecture;
    st.variant = base_stage->variant;
    st.author = base_stage->author;
  } else if (base_name == "scratch") {
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Scratch;
    st.vertex = add_vertex(src, {}, &from, "FROM scratch", st);
    st.config = base::Json::object();
    st.os = opts_.os;
    st.architecture = opts_.architecture;
  } else {
    ResolvedImage img;
    try {
      img = resolver_.resolve(base_name);
    } catch (base::Error& e) {
      fail(from, e.message());
    }
    st.config = img.config.contains("config") && img.config["config"].is_object()
                    ? img.config["config"]
                    : base::Json::object();
    st.history = history_from_config(img.config);
    st.os = img.config.value("os", opts_.os);
    st.architecture = img.config.value("architecture", opts_.architecture);
    st.variant = img.config.value("variant", "");
    st.author = img.config.value("author", "");
    if (st.config.contains("OnBuild") && st.config["OnBuild"].is_array() &&
        !st.config["OnBuild"].empty())
      fail(from, "ONBUILD triggers are not supported yet (base image " + img.ref + ")");
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Image;
    src.ref = img.ref;
    src.digest = img.digest;
    st.vertex = add_vertex(src, {}, &from, progress_name(st, "FROM " + img.ref), st);
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

  for (const ast::Instruction* c : st.commands) {
    const ast::Instruction& ins = *c;
    const std::string& n = ins.name;
    if (n == "run") lower_run(st, ins);
    else if (n == "workdir") lower_workdir(st, ins);
    else if (n == "copy") lower_copy(st, ins);
    else if (n == "arg") lower_arg(st, ins);
    else if (n == "add") fail(ins, "ADD is not supported yet");
    else if (n == "env" || n == "label" || n == "cmd" || n == "entrypoint" || n == "expose" ||
             n == "user" || n == "volume" || n == "stopsignal" || n == "shell" ||
             n == "healthcheck" || n == "maintainer" || n == "onbuild")
      lower_config(st, ins);
    else if (n == "from") fail(ins, "internal error: FROM inside a stage");
    else fail(ins, "unknown instruction: " + ins.keyword);
  }
  st.state = Stage::State::Done;
}

void Lowerer::lower_run(Stage& st, const ast::Instruction& ins) {
  for (const auto& f : ins.flags) fail(ins, "RUN --" + flag_name(f) + " is not supported yet");
  std::vector<std::string> args = ins.args;
  bool shell_form = !ins.json_form;
  if (!ins.heredocs.empty()) {
    if (args.size() != 1 || !shell_form)
      fail(ins, "parsing produced an invalid run command: " + go_list(args));
    if (parse_heredoc_word(args[0])) {
      std::string data = ins.heredocs[0].content;
      if (ins.heredocs[0].chomp) {
        std::string out;
        bool bol = true;
        for (char ch : data) {
          if (bol && ch == '\t') continue;
          bol = ch == '\n';
          out += ch;
        }
        data = out;
      }
      if (data.rfind("#!", 0) == 0)
        fail(ins, "RUN with a heredoc starting with #! (shebang) is not supported yet");
      args = {data};
    } else {
      std::string b = args[0];
      for (const auto& h : ins.heredocs) b += "\n" + h.content + h.name;
      args = {b};
    }
  }
  if (shell_form) args = with_shell(st, args);
  if (args.empty()) fail(ins, "RUN requires at least one argument");

  graph::ExecOp op;
  op.args = args;
  op.env = st.run_env;
  op.cwd = working_dir(st);
  op.user = st.config.value("User", "");
  std::string name = progress_name(st, display_text(st, ins));
  st.vertex = add_vertex(op, {st.vertex}, &ins, name, st);

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
  if (p.empty()) fail(ins, "cannot normalize nothing");
  std::string wd = p[0] == '/' ? clean_path(p) : clean_path(working_dir(st) + "/" + p);
  st.config["WorkingDir"] = wd;
  bool layer = false;
  if (wd != "/") {
    graph::FileOp op;
    graph::MkdirAction mk;
    mk.path = wd;
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
      // Global ARG: default expanded with earlier global ARGs; --build-arg overrides.
      std::vector<std::string> env;
      for (auto& a : global_args_)
        if (a.value) env.push_back(a.key + "=" + *a.value);
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
        if (a.value) env.push_back(a.key + "=" + *a.value);
      }
      continue;
    }
    stages_.back().commands.push_back(&ins);
  }
  if (stages_.empty()) throw base::Error("the Dockerfile has no FROM instruction", std::nullopt);
  for (auto& s : stages_) {
    s.label = s.name.empty() ? "stage-" + std::to_string(s.index) : s.name;
    if (stages_.size() == 1) s.label.clear();
  }

  Stage* target = &stages_.back();
  if (!opts_.target.empty()) {
    target = nullptr;
    std::string t = base::to_lower(opts_.target);
    for (auto& s : stages_)
      if (s.name == t) target = &s;
    if (!target) throw base::Error("target stage \"" + opts_.target + "\" could not be found");
  }
  ensure_lowered(*target, nullptr);

  auto& def = result_.definition;
  def.result = target->vertex;
  def.image.config = target->config;
  def.image.config.erase("ArgsEscaped");
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
