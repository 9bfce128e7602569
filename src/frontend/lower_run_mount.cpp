// RUN --mount: each mount value parsed as BuildKit's parseMount and lowered to a graph
// mount (dispatchRunMounts): bind (the context, a stage or an image), cache (a
// persistent directory, optionally seeded from a stage), tmpfs, and secret and ssh
// (dispatchSecret, dispatchSSH), which name only an id: the value is the executor's.
#include "base/strings.h"
#include "frontend/instruction_flags.h"
#include "frontend/lower_internal.h"

namespace builder::frontend::detail {
namespace {

/// Go's path.Base.
std::string path_base(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty()) return ".";
  if (p == "/") return "/";
  return p.substr(p.rfind('/') + 1);
}

/// A secret's or agent socket's target: absolute as written; a relative one is taken
/// from the root, as the OCI runtime under BuildKit takes it (not from WORKDIR).
std::string mount_target(const ast::Instruction& ins, const std::string& t) {
  std::string target = base::clean_path("/" + t);
  if (target == "/") throw base::Error("invalid mount target \"" + t + "\"", ins.range);
  return target;
}

/// dispatchSecret / dispatchSSH: the id, the target, and the file's mode and owner.
graph::ExecMount secret_or_ssh_mount(const ast::Instruction& ins, const MountSpec& m, const graph::ExecOp& op) {
  graph::ExecMount g;
  g.required = m.required;
  g.uid = m.uid.value_or(0);
  g.gid = m.gid.value_or(0);
  if (m.type == "secret") {
    g.kind = graph::ExecMount::Kind::Secret;
    g.id = !m.source.empty() ? m.source : m.id;
    if (g.id.empty()) g.id = path_base(m.target);  // parse_mount checked one of them is set
    if (m.env && m.env->empty()) throw base::Error("invalid value for env: the variable name is empty", ins.range);
    g.env = m.env;
    // The file: the target; else /run/secrets/<id> unless the secret is only an env var.
    if (!m.target.empty()) g.target = mount_target(ins, m.target);
    else if (!m.env) g.target = "/run/secrets/" + path_base(g.id);
    g.mode = m.mode.value_or(0400);
    return g;
  }
  g.kind = graph::ExecMount::Kind::Ssh;
  if (!m.source.empty()) throw base::Error("ssh does not support source", ins.range);
  if (!m.from.empty()) throw base::Error("ssh mount should not have a from", ins.range);
  g.id = m.id.empty() ? "default" : m.id;
  if (!m.target.empty()) {
    g.target = mount_target(ins, m.target);
  } else {
    // /run/buildkit/ssh_agent.N, N counting the step's SSH mounts as BuildKit's LLB does.
    size_t n = 0;
    for (const auto& other : op.mounts) n += other.kind == graph::ExecMount::Kind::Ssh ? 1 : 0;
    g.target = "/run/buildkit/ssh_agent." + std::to_string(n);
  }
  g.mode = m.mode.value_or(0600);
  return g;
}

}  // namespace

std::string summarize_heredoc(const std::string& doc) {
  std::string d(base::trim(doc));
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == '\r' && i + 1 < d.size() && d[i + 1] == '\n') continue;
    s += d[i];
  }
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl) + "...";
}

void Lowerer::add_run_mount(Stage& st, const ast::Instruction& ins, const std::string& value, graph::ExecOp& op,
                            std::vector<int>& inputs) {
  MountSpec m;
  try {
    m = parse_mount(value, [&](const std::string& w) { return expand_word(st, ins, w); });
  } catch (const base::Error& e) {
    fail(ins, e.message());
  }
  if (m.type == "secret" || m.type == "ssh") {
    op.mounts.push_back(secret_or_ssh_mount(ins, m, op));
    return;
  }

  graph::ExecMount g;
  g.readonly = m.readonly;
  std::string target = m.target;
  if (target.empty() || target[0] != '/') target = "/" + working_dir(st) + "/" + target;
  g.target = base::clean_path(target);
  if (g.target == "/") fail(ins, "invalid mount target \"" + g.target + "\"");
  g.source = base::clean_path("/" + m.source);

  // The mounted state: a stage, an image, or the build context.
  auto state_of = [&](const std::string& from) -> int {
    if (Stage* s = find_stage(from, st.index)) {
      ensure_lowered(*s, &ins);
      return s->vertex;
    }
    for (auto& other : stages_)
      if (!other.name.empty() && other.name == base::to_lower(from))
        fail(ins, "cannot mount from stage \"" + from + "\" to \"" + m.target +
                      "\", stage needs to be defined before current command");
    return image_source(st, ins, from);
  };

  if (m.type == "tmpfs") {
    g.kind = graph::ExecMount::Kind::Tmpfs;
    g.size = m.size;
    g.source = "/";
  } else if (m.type == "cache") {
    g.kind = graph::ExecMount::Kind::Cache;
    g.cache_id = m.id.empty() ? g.target : m.id;
    g.sharing = m.sharing == "private"  ? graph::ExecMount::Sharing::Private
                : m.sharing == "locked" ? graph::ExecMount::Sharing::Locked
                                        : graph::ExecMount::Sharing::Shared;
    g.mode = m.mode;
    g.uid = m.uid;
    g.gid = m.gid;
    if (!m.from.empty()) {
      g.input = static_cast<int>(inputs.size());
      inputs.push_back(state_of(m.from));
    }
  } else {
    g.kind = graph::ExecMount::Kind::Bind;
    int v = -1;
    if (!m.from.empty()) {
      v = state_of(m.from);
    } else {
      graph::SourceOp src;
      src.kind = graph::SourceOp::Kind::Local;
      src.local_name = opts_.context_name;
      if (g.source != "/") src.include_patterns = {g.source.substr(1)};
      src.exclude_patterns = opts_.context_excludes;
      v = add_vertex(src, {}, &ins, "[internal] load build context", st);
    }
    g.input = static_cast<int>(inputs.size());
    inputs.push_back(v);
  }
  op.mounts.push_back(std::move(g));
}

}  // namespace builder::frontend::detail
