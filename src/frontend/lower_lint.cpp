// Build checks that need the scope lowering keeps (global ARGs, a stage's ARG/ENV values,
// its base and image config), run where BuildKit's dockerfile2llb runs them, and the
// capture of the target's outline (build args, secrets, SSH). Lowering calls in at four
// places: lint_begin and lint_stages before any stage is lowered (BuildKit: parse and
// buildDispatchStates, every stage), lint_instruction before each instruction of a
// lowered stage (dispatch: only the stages the build reaches, or all with
// LowerOptions::all_stages), lint_end after the target (outline, `error=true`).
#include <algorithm>

#include "base/strings.h"
#include "frontend/lower_internal.h"
#include "frontend/parse.h"

namespace builder::frontend::detail {
namespace {

/// BuildKit's defaultArgs, in its order.
constexpr const char* kBuiltinArgs[] = {
    "BUILDPLATFORM", "BUILDOS",         "BUILDOSVERSION", "BUILDARCH",     "BUILDVARIANT", "TARGETPLATFORM",
    "TARGETOS",      "TARGETOSVERSION", "TARGETARCH",     "TARGETVARIANT", "TARGETSTAGE"};

bool non_env_arg(const std::string& k) {
  return k == "BUILDKIT_SBOM_SCAN_CONTEXT" || k == "BUILDKIT_SBOM_SCAN_STAGE";
}

std::vector<std::string> env_keys(const std::vector<std::string>& env) {
  std::vector<std::string> keys;
  for (const auto& e : env) keys.push_back(e.substr(0, e.find('=')));
  return keys;
}

/// getSecretsRegex: one `_`-separated word of the key names a secret, and none says it
/// is only a public part, a file or a version.
bool names_secret(const std::string& key) {
  static const std::set<std::string> kDeny = {"apikey",   "auth",  "credential", "credentials", "key",
                                              "password", "pword", "passwd",     "secret",      "token"};
  static const std::set<std::string> kAllow = {"public", "file", "version"};
  bool deny = false, allow = false;
  for (const auto& w : base::split(key, '_')) {
    std::string l = base::to_lower(w);
    deny |= kDeny.count(l) > 0;
    allow |= kAllow.count(l) > 0;
  }
  return deny && !allow;
}

/// Every value of `--name=value` (or "" for a bare `--name`) among the raw flags.
std::vector<std::string> flag_values(const ast::Instruction& ins, const std::string& name) {
  std::vector<std::string> out;
  const std::string bare = "--" + name;
  for (const auto& f : ins.flags) {
    if (f == bare)
      out.emplace_back();
    else if (f.rfind(bare + "=", 0) == 0)
      out.push_back(f.substr(bare.size() + 1));
  }
  return out;
}

std::optional<std::string> flag_value(const ast::Instruction& ins, const std::string& name) {
  auto v = flag_values(ins, name);
  if (v.empty()) return std::nullopt;
  return v.back();
}

std::string format_platform(const Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

}  // namespace

void Lowerer::lint_begin() {
  auto bo = opts_.build_args.find("BUILDKIT_DOCKERFILE_CHECK");
  linter_ = Linter(check_config(file_.directives, bo == opts_.build_args.end() ? nullptr : &bo->second),
                   opts_.lint);
  lint_syntax(file_, linter_);
}

void Lowerer::lint_from_args(const ast::Instruction& from, const std::set<std::string>& unmatched,
                             const std::set<std::string>& declared, const std::vector<std::string>& keys) {
  for (const auto& arg : unmatched) {
    if (declared.count(arg)) continue;
    std::string s = suggest(arg, keys);
    linter_.run(
        lint_rules::kUndefinedArgInFrom, from.range,
        "FROM argument '" + arg + "' is not declared" + (s.empty() ? "" : " (did you mean " + s + "?)"),
        from.comments);
  }
}

void Lowerer::lint_stages() {
  std::vector<const ast::Instruction*> global_args;
  for (const auto& ins : file_.instructions) {
    if (ins.name == "from") break;
    if (ins.name == "arg") global_args.push_back(&ins);
  }
  std::vector<std::string> builtins;
  for (const char* k : kBuiltinArgs) builtins.push_back(std::string(k) + "=" + builtin_args_[k]);

  // InvalidDefaultArgInFrom: the base names with every global ARG at its default (only
  // the built-in ARGs take --build-arg values), whatever this build passes.
  [&] {
    std::vector<std::string> env = builtins;
    for (const auto* ins : global_args)
      for (const auto& w : ins->args) {
        auto eq = w.find('=');
        if (eq == std::string::npos) continue;
        try {
          add_env(env, w.substr(0, eq), process_word(w.substr(eq + 1), env_from_list(env), shell_));
        } catch (const base::Error&) {
          return;  // lowering reports it
        }
      }
    for (const auto& st : stages_) {
      std::string name;
      try {
        name = process_word(st.from->args[0], env_from_list(env), shell_);
      } catch (const base::Error&) {
        return;
      }
      if (!valid_image_reference(name))
        linter_.run(
            lint_rules::kInvalidDefaultArgInFrom, st.from->range,
            "Default value for ARG " + st.from->args[0] + " results in empty or invalid base image name");
    }
  }();

  // buildMetaArgs: the global ARGs with this build's values, and what each refers to.
  std::vector<std::string> env = builtins;
  std::set<std::string> declared;
  for (const auto* ins : global_args)
    for (const auto& w : ins->args) {
      auto eq = w.find('=');
      ArgInfo info;
      info.key = w.substr(0, eq);
      info.description = doc_comment(ins->comments, info.key);
      info.range = ins->range;
      std::optional<std::string> value;
      auto bo = opts_.build_args.find(info.key);
      if (bo != opts_.build_args.end()) {
        value = bo->second;
      } else if (eq != std::string::npos) {
        try {
          ExpandResult r = expand(w.substr(eq + 1), env_from_list(env), shell_);
          value = r.result;
          info.deps = r.matched;
          if (info.deps.erase(info.key)) {
            auto old = global_arg_info_.find(info.key);
            if (old != global_arg_info_.end())
              info.deps.insert(old->second.deps.begin(), old->second.deps.end());
          }
        } catch (const base::Error&) {
          return;  // lowering reports it
        }
      }
      if (value) {
        add_env(env, info.key, *value);
        info.value = *value;
      }
      declared.insert(info.key);
      global_arg_info_[info.key] = std::move(info);
    }
  std::vector<std::string> keys = env_keys(env);
  for (const auto& k : declared)
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  for (const auto& k : keys) declared.insert(k);

  // buildDispatchStates: each FROM, expanded with the global scope. As there, a base
  // name or platform that does not expand to something usable ends the checks.
  const EnvLookup lookup = env_from_list(env);
  for (auto& st : stages_) {
    const ast::Instruction& from = *st.from;
    ExpandResult name;
    try {
      name = expand(from.args[0], lookup, shell_);
    } catch (const base::Error&) {
      return;
    }
    lint_from_args(from, name.unmatched, declared, keys);
    if (name.result.empty()) return;
    st.lint.base_name = name.result;
    std::set<std::string> used = name.matched;
    if (auto platform = flag_value(from, "platform")) {
      ExpandResult p;
      try {
        p = expand(*platform, lookup, shell_);
      } catch (const base::Error&) {
        return;
      }
      lint_from_args(from, p.unmatched, declared, keys);
      if (p.matched.size() == 1 && p.unmatched.empty() && p.matched.count("TARGETPLATFORM") &&
          p.result == lookup("TARGETPLATFORM").value_or(""))
        linter_.run(lint_rules::kRedundantTargetPlatform, from.range,
                    "Setting platform to predefined " + *platform +
                        " in FROM is redundant as this is the default behavior",
                    from.comments);
      if (p.matched.empty() && p.unmatched.empty()) {
        if (auto cp = parse_platform(p.result))
          if (st.name.find(cp->os) == std::string::npos &&
              st.name.find(cp->architecture) == std::string::npos)
            linter_.run(lint_rules::kFromPlatformFlagConstDisallowed, from.range,
                        "FROM --platform flag should not use constant value " + go_quote(p.result),
                        from.comments);
      }
      if (p.result.empty()) return;
      st.lint.platform = parse_platform(p.result);
      if (!st.lint.platform) return;
      used.insert(p.matched.begin(), p.matched.end());
    }
    if (Stage* base = find_stage(name.result, st.index)) {
      st.lint.base = base->index;
      st.lint.used_args = base->lint.used_args;  // BuildKit clones the base's outline
    }
    st.lint.used_args.insert(used.begin(), used.end());
  }
}

void Lowerer::lint_undefined(const ast::Instruction& ins, const std::set<std::string>& unmatched,
                             const std::set<std::string>& declared, const std::vector<std::string>& keys) {
  for (const auto& v : unmatched) {
    if (declared.count(v) || non_env_arg(v)) continue;
    std::string s = suggest(v, keys);
    linter_.run(lint_rules::kUndefinedVar, ins.range,
                "Usage of undefined variable '$" + v + "'" + (s.empty() ? "" : " (did you mean $" + s + "?)"),
                ins.comments);
  }
}

void Lowerer::lint_ignored(const ast::Instruction& ins, const std::string& cmd, const std::string& src) {
  // validateCopySourcePath: only without `!` patterns, which are too hard to judge here.
  if (!opts_.context_ignored || opts_.context_excludes.empty()) return;
  bool root_ignored = false;
  for (const auto& p : opts_.context_excludes) {
    if (!p.empty() && p[0] == '!') return;
    root_ignored |= p == "*" || p == "**" || p == "**/*";
  }
  std::string clean = base::clean_path(src);
  std::string rel = clean == "/" ? "." : clean[0] == '/' ? clean.substr(1) : clean;
  if (rel == "..") return;
  if (rel.rfind("../", 0) == 0) return;  // outside the context: COPY reports that
  if (rel == "." ? !root_ignored : !opts_.context_ignored(rel)) return;
  linter_.run(lint_rules::kCopyIgnoredFile, ins.range,
              "Attempting to " + cmd + " file " + go_quote(clean) + " that is excluded by .dockerignore",
              ins.comments);
}

void Lowerer::lint_instruction(Stage& st, const ast::Instruction& ins) {
  StageLint& sl = st.lint;
  if (!sl.started) {
    sl.started = true;
    if (sl.base >= 0) sl.workdir_set = stages_[sl.base].lint.workdir_set;
  }
  const std::string& n = ins.name;
  const auto& comments = ins.comments;
  const EnvLookup env = env_of(st);
  const std::vector<std::string> keys = env_keys(st.run_env);
  std::set<std::string> declared;
  for (const auto& a : st.build_args) declared.insert(a.key);
  // A word as dispatch expands it, reporting UndefinedVar; nullopt when it does not
  // expand (lowering reports that).
  auto expand_checked = [&](const std::string& word, const ShellOptions& o) -> std::optional<std::string> {
    try {
      ExpandResult r = expand(word, env, o);
      lint_undefined(ins, r.unmatched, declared, keys);
      return r.result;
    } catch (const base::Error&) {
      return std::nullopt;
    }
  };
  auto stage_dep = [&](const std::string& name) {
    if (Stage* s = find_stage(name, st.index)) sl.deps.insert(s->index);
  };

  if (n == "env" || n == "label") {
    std::vector<std::string> names;
    for (size_t i = 0; i + 2 < ins.args.size(); i += 3) {
      names.push_back(expand_checked(ins.args[i], shell_).value_or(ins.args[i]));
      expand_checked(ins.args[i + 1], shell_);
    }
    for (size_t i = 0; i + 2 < ins.args.size(); i += 3) {
      if (ins.args[i + 2].empty())
        linter_.run(lint_rules::kLegacyKeyValueFormat, ins.range,
                    "\"" + ins.keyword + " key=value\" should be used instead of legacy \"" + ins.keyword +
                        " key value\" format",
                    comments);
      if (n == "env" && names_secret(names[i / 3]))
        linter_.run(
            lint_rules::kSecretsUsedInArgOrEnv, ins.range,
            "Do not use ARG or ENV instructions for sensitive data (ENV " + go_quote(names[i / 3]) + ")",
            comments);
    }
  } else if (n == "arg") {
    // dispatchArg, one key after the other: each sees the ones before it.
    std::vector<std::string> arg_env = st.run_env;
    std::set<std::string> arg_declared = declared;
    for (const auto& w : ins.args) {
      auto eq = w.find('=');
      std::string key = w.substr(0, eq);
      if (names_secret(key))
        linter_.run(lint_rules::kSecretsUsedInArgOrEnv, ins.range,
                    "Do not use ARG or ENV instructions for sensitive data (ARG " + go_quote(key) + ")",
                    comments);
      auto bo = opts_.build_args.find(key);
      bool has_value = bo != opts_.build_args.end(), has_default = eq != std::string::npos;
      bool inherited = false;  // from the global scope: the outline keeps the global entry
      std::optional<std::string> value;
      if (!has_default && !has_value) {
        for (const auto& g : global_args_)
          if (g.key == key && g.value) value = g.value;
        if (!value) {
          auto b = builtin_args_.find(key);
          if (b != builtin_args_.end()) value = b->second;
        }
        inherited = value.has_value();
      }
      if (has_value) {
        value = bo->second;
      } else if (has_default) {
        try {
          ExpandResult r = expand(w.substr(eq + 1), env_from_list(arg_env), shell_);
          lint_undefined(ins, r.unmatched, arg_declared, env_keys(arg_env));
          value = r.result;
        } catch (const base::Error&) {
          return;
        }
      }
      if (!inherited)
        sl.args[key] = ArgInfo{key, value.value_or(""), doc_comment(comments, key), {}, ins.range};
      sl.used_args.insert(key);
      if (value && !non_env_arg(key)) add_env(arg_env, key, *value);
      arg_declared.insert(key);
    }
  } else if (n == "workdir") {
    if (ins.args.empty()) return;
    auto p = expand_checked(ins.args[0], shell_);
    if (!p) return;
    // Only the first WORKDIR of the build counts: an absolute one fixes those after it.
    if (!sl.workdir_set && (p->empty() || (*p)[0] != '/'))
      linter_.run(
          lint_rules::kWorkdirRelativePath, ins.range,
          "Relative workdir " + go_quote(*p) + " can have unexpected results if the base image changes",
          comments);
    sl.workdir_set = true;
  } else if (n == "cmd" || n == "entrypoint" || n == "healthcheck") {
    const ast::Instruction*& last = n == "cmd"          ? sl.last_cmd
                                    : n == "entrypoint" ? sl.last_entrypoint
                                                        : sl.last_healthcheck;
    // The earlier one is reported: it is the one without effect.
    if (last)
      linter_.run(
          lint_rules::kMultipleInstructionsDisallowed, last->range,
          "Multiple " + ins.keyword +
              " instructions should not be used in the same stage because only the last one will be used",
          comments);
    last = &ins;
    bool has_shell =
        st.config.contains("Shell") && st.config["Shell"].is_array() && !st.config["Shell"].empty();
    if (n != "healthcheck" && !ins.json_form && !has_shell)
      linter_.run(lint_rules::kJSONArgsRecommended, ins.range,
                  "JSON arguments recommended for " + ins.keyword +
                      " to prevent unintended behavior related to OS signals",
                  comments);
  } else if (n == "expose") {
    std::vector<std::string> words = ins.args;
    std::sort(words.begin(), words.end());
    std::vector<std::string> ports;
    for (const auto& w : words) {
      try {
        auto ps = process_words(w, env, shell_);
        ports.insert(ports.end(), ps.begin(), ps.end());
      } catch (const base::Error&) {
        return;
      }
    }
    for (const auto& raw : ports) {
      // splitParts, then splitProtoPort: ports that do not parse are lowering's error.
      auto parts = base::split(raw, ':');
      std::string container = parts.back();
      bool mapped = parts.size() > 1;
      auto slash = container.find('/');
      std::string port = container.substr(0, slash);
      std::string proto = slash == std::string::npos ? "" : container.substr(slash + 1);
      std::string lproto = base::to_lower(proto);
      if (port.empty() || (!lproto.empty() && lproto != "tcp" && lproto != "udp" && lproto != "sctp")) return;
      if (proto != lproto)
        linter_.run(lint_rules::kExposeProtoCasing, ins.range,
                    "Defined protocol '" + raw + "' in EXPOSE instruction should be lowercase", comments);
      if (mapped)
        linter_.run(
            lint_rules::kExposeInvalidFormat, ins.range,
            "EXPOSE instruction should not define an IP address or host-port mapping, found '" + raw + "'",
            comments);
    }
  } else if (n == "copy" || n == "add") {
    auto from = flag_value(ins, "from");
    for (const char* f : {"chown", "chmod", "checksum"})
      if (auto v = flag_value(ins, f)) expand_checked(*v, shell_);
    if (ins.args.size() < 2) return;
    std::vector<std::string> sources;
    std::vector<ast::Heredoc> docs;
    for (size_t i = 0; i + 1 < ins.args.size(); ++i) {
      std::optional<ast::Heredoc> h;
      try {
        h = parse_heredoc_word(ins.args[i]);
      } catch (const base::Error&) {
        return;
      }
      if (h) {
        docs.push_back(*h);
      } else if (auto s = expand_checked(ins.args[i], shell_)) {
        sources.push_back(*s);
      }
    }
    expand_checked(ins.args.back(), shell_);
    // ExpandRaw: heredoc bodies whose terminator was not quoted.
    ShellOptions raw;
    raw.skip_process_quotes = true;
    for (const auto& h : docs) {
      if (!h.expand) continue;
      for (const auto& body : ins.heredocs)
        if (body.name == h.name) expand_checked(body.content, raw);
    }
    if (from) {
      stage_dep(*from);
      return;
    }
    for (const auto& s : sources) {
      bool remote = s.find("://") != std::string::npos || s.rfind("git@", 0) == 0;
      if (!(n == "add" && remote)) lint_ignored(ins, n == "add" ? "Add" : "Copy", s);
    }
  } else if (n == "run") {
    // RUN --mount: every value is expanded; secrets and SSH sockets go to the outline.
    for (const auto& m : flag_values(ins, "mount")) {
      std::string type = "bind", id, source, target, mount_from;
      bool required = false;
      for (auto& [key, value] : mount_fields(m)) {
        std::string v;
        if (value) v = expand_checked(*value, shell_).value_or(*value);
        if (key == "type" && value)
          type = base::to_lower(v);
        else if (key == "id" && value)
          id = v;
        else if ((key == "source" || key == "src") && value)
          source = v;
        else if ((key == "target" || key == "dst" || key == "destination") && value)
          target = v;
        else if (key == "from" && value)
          mount_from = v;
        else if (key == "required")
          required = !value || base::to_lower(v) == "true" || v == "1";
      }
      if (!mount_from.empty()) stage_dep(mount_from);
      if (type == "secret") {
        if (id.empty()) id = source;
        if (id.empty() && !target.empty()) id = target.substr(target.rfind('/') + 1);
        if (!id.empty() && !sl.secrets.count(id)) sl.secrets[id] = OutlineMount{id, required, ins.range};
      } else if (type == "ssh") {
        if (id.empty()) id = "default";
        if (!sl.ssh.count(id)) sl.ssh[id] = OutlineMount{id, required, ins.range};
      }
    }
  } else if (n == "user" || n == "stopsignal") {
    if (!ins.args.empty()) expand_checked(ins.args[0], shell_);
  } else if (n == "volume") {
    for (const auto& a : ins.args) expand_checked(std::string(base::trim(a)), shell_);
  }
}

void Lowerer::lint_end(const Stage& target) {
  // validateBaseImagePlatform, for the stages built on an image.
  for (const auto& s : stages_) {
    if (s.state != Stage::State::Done || s.lint.base >= 0 || s.lint.base_name.empty() ||
        s.lint.base_name == "scratch")
      continue;
    Platform expected = s.lint.platform.value_or(Platform{opts_.os, opts_.architecture, ""});
    if (expected.os == s.os && expected.architecture == s.architecture) continue;
    Platform actual{s.os, s.architecture, s.variant};
    linter_.run(lint_rules::kInvalidBaseImagePlatform, s.from->range,
                "Base image " + s.lint.base_name + " was pulled with platform " +
                    go_quote(format_platform(actual)) + ", expected " + go_quote(format_platform(expected)) +
                    " for current build");
  }

  // The outline: the args, secrets and SSH sockets of the target, then of its base and
  // of the stages it uses, the first one seen of each name winning (dispatchState.args).
  Outline& o = result_.outline;
  o.name = target.name;
  o.description = doc_comment(target.from->comments, target.name);
  std::set<std::string> seen_args, seen_secrets, seen_ssh;
  std::set<int> seen_stages;
  auto collect = [&](auto& self, const Stage& s) -> void {
    if (!seen_stages.insert(s.index).second) return;
    auto info = [&](const std::string& k) -> const ArgInfo* {
      auto own = s.lint.args.find(k);
      if (own != s.lint.args.end()) return &own->second;
      auto g = global_arg_info_.find(k);
      return g == global_arg_info_.end() ? nullptr : &g->second;
    };
    // markAllUsed: a global ARG used brings the ones its default refers to.
    std::set<std::string> used, pending(s.lint.used_args.begin(), s.lint.used_args.end());
    while (!pending.empty()) {
      std::string k = *pending.begin();
      pending.erase(pending.begin());
      if (!used.insert(k).second) continue;
      if (const ArgInfo* a = info(k)) pending.insert(a->deps.begin(), a->deps.end());
    }
    for (const auto& k : used) {
      const ArgInfo* a = info(k);
      if (a && seen_args.insert(k).second)
        o.args.push_back(OutlineArg{a->key, a->value, a->description, a->range});
    }
    for (const auto& [k, m] : s.lint.secrets)
      if (seen_secrets.insert(k).second) o.secrets.push_back(m);
    for (const auto& [k, m] : s.lint.ssh)
      if (seen_ssh.insert(k).second) o.ssh.push_back(m);
    if (s.lint.base >= 0) self(self, stages_[s.lint.base]);
    for (int d : s.lint.deps) self(self, stages_[d]);
  };
  collect(collect, target);
  auto by_line = [](const auto& a, const auto& b) { return a.range.start_line < b.range.start_line; };
  std::stable_sort(o.args.begin(), o.args.end(), by_line);
  std::stable_sort(o.secrets.begin(), o.secrets.end(), by_line);
  std::stable_sort(o.ssh.begin(), o.ssh.end(), by_line);

  if (auto v = linter_.violation()) throw base::Error(*v);
}

}  // namespace builder::frontend::detail
