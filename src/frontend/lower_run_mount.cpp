// RUN --mount: each mount value parsed as BuildKit's parseMount and lowered to a graph
// mount (dispatchRunMounts): bind (the context, a stage or an image), cache (a
// persistent directory, optionally seeded from a stage) and tmpfs. Secret and SSH
// mounts are refused until the sandbox can provide them.
#include "base/strings.h"
#include "frontend/instruction_flags.h"
#include "frontend/lower_internal.h"

namespace builder::frontend::detail {

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
  if (m.type == "secret" || m.type == "ssh")
    fail(ins, "RUN --mount=type=" + m.type + " is not supported yet");

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
