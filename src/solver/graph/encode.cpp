#include "solver/graph/encode.h"

#include "base/digest.h"
#include "base/strings.h"

namespace builder::graph {

using base::Json;

namespace {

const char* network_name(NetworkMode m) {
  switch (m) {
    case NetworkMode::Sandbox: return "sandbox";
    case NetworkMode::Host: return "host";
    case NetworkMode::None: return "none";
  }
  return "?";
}

Json to_json(const SourceOp& s) {
  Json j;
  switch (s.kind) {
    case SourceOp::Kind::Scratch: j["source"] = "scratch"; break;
    case SourceOp::Kind::Image:
      j["source"] = "image";
      // The digest pins the content; the reference is kept so that two tags of one
      // image still share results (it does not change what is read).
      j["digest"] = s.digest;
      break;
    case SourceOp::Kind::Local:
      j["source"] = "local";
      j["name"] = s.local_name;
      j["include"] = s.include_patterns;
      j["exclude"] = s.exclude_patterns;
      break;
    // New kinds add fields only to their own objects, so the encoding of the kinds
    // above (and the cache keys made from it) is unchanged.
    case SourceOp::Kind::Http:
      j["source"] = "http";
      j["url"] = s.url;
      j["checksum"] = s.checksum;
      j["filename"] = s.filename;
      break;
    case SourceOp::Kind::Git:
      j["source"] = "git";
      j["remote"] = s.url;
      j["ref"] = s.git_ref;
      j["checksum"] = s.checksum;
      j["subdir"] = s.subdir;
      j["keep_git_dir"] = s.keep_git_dir;
      break;
  }
  return j;
}

Json to_json(const ExecOp& e) {
  Json j;
  j["exec"] = e.args;
  j["env"] = e.env;
  j["cwd"] = e.cwd;
  j["user"] = e.user;
  j["network"] = network_name(e.network);
  if (e.insecure) j["insecure"] = true;
  if (!e.mounts.empty()) {
    Json ms = Json::array();
    for (const auto& m : e.mounts) {
      Json mj;
      static const char* kinds[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
      static const char* sharing[] = {"shared", "private", "locked"};
      mj["type"] = kinds[static_cast<int>(m.kind)];
      mj["target"] = m.target;
      mj["input"] = m.input;
      mj["source"] = m.source;
      mj["readonly"] = m.readonly;
      if (m.kind == ExecMount::Kind::Cache) {
        mj["id"] = m.cache_id;
        mj["sharing"] = sharing[static_cast<int>(m.sharing)];
        mj["mode"] = m.mode ? Json(*m.mode) : Json();
        mj["uid"] = m.uid ? Json(*m.uid) : Json();
        mj["gid"] = m.gid ? Json(*m.gid) : Json();
      }
      if (m.kind == ExecMount::Kind::Tmpfs) mj["size"] = m.size;
      if (m.kind == ExecMount::Kind::Secret || m.kind == ExecMount::Kind::Ssh) {
        // What is asked for, never the value: a changed secret keeps the cache (as BuildKit).
        mj["id"] = m.id;
        if (m.env) mj["env"] = *m.env;
        mj["required"] = m.required;
        mj["mode"] = m.mode ? Json(*m.mode) : Json();
        mj["uid"] = m.uid ? Json(*m.uid) : Json();
        mj["gid"] = m.gid ? Json(*m.gid) : Json();
      }
      ms.push_back(std::move(mj));
    }
    j["mounts"] = std::move(ms);
  }
  return j;
}

Json to_json(const MergeOp&) { return Json{{"merge", true}}; }

Json to_json(const FileOp& f) {
  Json actions = Json::array();
  for (const auto& a : f.actions) {
    Json j;
    if (const auto* c = std::get_if<CopyAction>(&a)) {
      j["copy"] = c->src_paths;
      j["input"] = c->src_input;
      j["dest"] = c->dest;
      j["chown"] = c->chown;
      j["chmod"] = c->chmod ? Json(*c->chmod) : Json();
      j["follow"] = c->follow_symlinks;
      j["wildcard"] = c->allow_wildcard;
      j["empty_wildcard"] = c->allow_empty_wildcard;
      if (!c->chmod_symbolic.empty()) j["chmod_symbolic"] = c->chmod_symbolic;
      if (!c->include_patterns.empty()) j["include"] = c->include_patterns;
      if (!c->exclude_patterns.empty()) j["exclude"] = c->exclude_patterns;
      if (!c->required_paths.empty()) j["required"] = c->required_paths;
      if (c->unpack_archives) j["unpack"] = true;
    } else if (const auto* f = std::get_if<MkfileAction>(&a)) {
      j["mkfile"] = f->path;
      j["data"] = f->data;
      j["mode"] = f->mode;
      j["chown"] = f->chown;
    } else {
      const auto& m = std::get<MkdirAction>(a);
      j["mkdir"] = m.path;
      j["mode"] = m.mode;
      j["parents"] = m.make_parents;
      j["chown"] = m.chown;
    }
    actions.push_back(std::move(j));
  }
  return Json{{"file", std::move(actions)}};
}

}  // namespace

std::string encode_op(const Op& op) {
  Json j = std::visit([](const auto& o) { return to_json(o); }, op);
  return "v" + std::to_string(kEncodingVersion) + ":" + j.dump();
}

std::string describe(const Op& op) {
  if (const auto* s = std::get_if<SourceOp>(&op)) {
    switch (s->kind) {
      case SourceOp::Kind::Scratch: return "scratch";
      case SourceOp::Kind::Image: return "image " + s->ref + "@" + s->digest;
      case SourceOp::Kind::Local: return "local " + s->local_name;
      case SourceOp::Kind::Http: return "http " + s->url;
      case SourceOp::Kind::Git: return "git " + s->url + (s->git_ref.empty() ? "" : "#" + s->git_ref);
    }
  }
  if (const auto* e = std::get_if<ExecOp>(&op)) return "exec [" + base::join(e->args, " ") + "]";
  if (std::holds_alternative<MergeOp>(op)) return "merge";
  return "file " + std::to_string(std::get<FileOp>(op).actions.size()) + " action(s)";
}

std::string definition_digest(const Definition& def) {
  base::Sha256 h;
  for (const auto& v : def.vertices) {
    h.update(encode_op(v.op));
    for (int i : v.inputs) h.update("<" + std::to_string(i));
    h.update("\n");
  }
  h.update("result=" + std::to_string(def.result));
  return h.finish().str();
}

void validate(const Definition& def) {
  const int n = static_cast<int>(def.vertices.size());
  if (def.result < 0 || def.result >= n)
    throw base::Error("build graph: result vertex " + std::to_string(def.result) + " out of range");
  for (int i = 0; i < n; ++i) {
    const auto& v = def.vertices[i];
    for (int in : v.inputs)
      if (in < 0 || in >= i)
        throw base::Error("build graph: vertex " + std::to_string(i) + " has input " + std::to_string(in) +
                          " that does not precede it");
    if (std::holds_alternative<ExecOp>(v.op)) {
      const auto& e = std::get<ExecOp>(v.op);
      if (v.inputs.empty()) throw base::Error("build graph: exec vertex " + std::to_string(i) + " has no root input");
      if (e.args.empty()) throw base::Error("build graph: exec vertex " + std::to_string(i) + " has no command");
      for (const auto& m : e.mounts)
        if (m.input >= static_cast<int>(v.inputs.size()) || (m.kind == ExecMount::Kind::Bind && m.input < 0))
          throw base::Error("build graph: mount in vertex " + std::to_string(i) + " names missing input " +
                            std::to_string(m.input));
    }
    if (const auto* f = std::get_if<FileOp>(&v.op)) {
      if (v.inputs.empty()) throw base::Error("build graph: file vertex " + std::to_string(i) + " has no target input");
      for (const auto& a : f->actions)
        if (const auto* c = std::get_if<CopyAction>(&a))
          if (c->src_input < 0 || c->src_input >= static_cast<int>(v.inputs.size()))
            throw base::Error("build graph: copy in vertex " + std::to_string(i) + " names missing input " +
                              std::to_string(c->src_input));
    }
  }
}

}  // namespace builder::graph
