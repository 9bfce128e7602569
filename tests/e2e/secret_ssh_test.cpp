// tests/e2e/secret_ssh_test.cpp — end-to-end: RUN --mount=type=secret (a file at the
// default or a custom target with its mode and owner, an environment variable, optional
// and required) with `--secret src=|env=|id only`, and RUN --mount=type=ssh through
// builder's relay socket (keys from `--ssh ID=KEY` or an agent at $SSH_AUTH_SOCK; list
// and sign pass, remove-all is refused). The secret's bytes must be nowhere afterwards:
// not in the image's blobs (OCI archive), any file under the builder root (compressed
// blobs decompressed), the history logs, or builder's output; a changed secret keeps
// the step cached. Context: made here (Dockerfiles embed only hashes of the secrets),
// plus tests/e2e/agent_tool.c's static binary.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <random>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::TestRoot;
using builder::e2e::write_file;
namespace fs = std::filesystem;

namespace {

std::string random_text(const std::string& prefix) {
  std::random_device rd;
  std::string s = prefix;
  for (int i = 0; i < 24; ++i) s += "0123456789abcdef"[rd() % 16];
  return s;
}

std::string sha256(const std::string& data, const TestRoot& root) {
  fs::path f = root.dir() / "hash-input";
  write_file(f, data);
  Result r = run_process({"sha256sum", f.string()});
  fs::remove(f);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  return r.out.substr(0, 64);
}

/// `builder --root <store> args...` with `env` set (and SSH_AUTH_SOCK unset unless given).
Result builder_env(const TestRoot& root, const std::vector<std::string>& env, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "-u", "SSH_AUTH_SOCK"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(builder::test::builder_binary());
  argv.push_back("--root");
  argv.push_back(root.store().string());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, root.work().string());
}

/// A file's bytes, decompressed when it is gzip (layer blobs).
std::string contents(const fs::path& p) {
  std::string data = slurp(p);
  if (data.size() > 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b) {
    Result r = run_process({"gzip", "-dc", p.string()});
    data += r.out;
  }
  return data;
}

/// Every regular file below `dir` whose bytes (or decompressed bytes) hold one of `needles`.
std::vector<std::string> files_containing(const fs::path& dir, const std::vector<std::string>& needles,
                                          size_t* scanned = nullptr) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    std::string data = contents(it->path());
    if (scanned) ++*scanned;
    for (const auto& n : needles)
      if (data.find(n) != std::string::npos) hits.push_back(it->path().string() + " holds " + n);
  }
  return hits;
}

bool holds_any(const std::string& text, const std::vector<std::string>& needles) {
  for (const auto& n : needles)
    if (text.find(n) != std::string::npos) return true;
  return false;
}

/// Processes whose command line mentions `needle` (a store path: agents builder started).
std::vector<std::string> processes_mentioning(const std::string& needle) {
  std::vector<std::string> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmd = slurp(fs::path("/proc") / e->d_name / "cmdline");
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(std::string(e->d_name) + ": " + cmd);
  }
  ::closedir(d);
  return out;
}

/// Entries of the store's scratch directory (run/) whose names start with `prefix`.
std::vector<std::string> scratch_entries(const TestRoot& root, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root.store() / "run", ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().string());
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

/// An ssh-agent of the test's own (as a user's $SSH_AUTH_SOCK), killed at the end.
struct TestAgent {
  std::string sock;
  pid_t pid = -1;
  ~TestAgent() {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
};

}  // namespace

TEST_CASE("e2e: RUN --mount=type=secret gives the secret to the step and nowhere else") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string file_secret = random_text("e2e-file-secret-");
  const std::string env_secret = random_text("e2e-env-secret-");
  const std::string id_secret = random_text("e2e-id-secret-");
  const fs::path secret_file = root.dir() / "secrets" / "mysecret.txt";  // outside the store
  write_file(secret_file, file_secret);

  const fs::path ctx = root.work() / "ctx";
  std::string df =
      "FROM busybox\n"
      "RUN --mount=type=secret,id=mysecret test \"$(sha256sum < /run/secrets/mysecret | cut -d' ' -f1)\" = SUM1 "
      "&& stat -c '%a %u %g' /run/secrets/mysecret > /perm-default\n"
      "RUN --mount=type=secret,id=mysecret,target=/etc/app/token,mode=0440,uid=1000,gid=1001 "
      "test \"$(sha256sum < /etc/app/token | cut -d' ' -f1)\" = SUM1 && stat -c '%a %u %g' /etc/app/token > "
      "/perm-custom\n"
      "RUN --mount=type=secret,id=fromenv,env=MY_TOKEN test \"$(printf %s \"$MY_TOKEN\" | sha256sum | cut -d' ' "
      "-f1)\" = SUM2 && { test -e /run/secrets/fromenv && echo file || echo nofile; } > /env-only\n"
      "RUN --mount=type=secret,id=E2E_ID_VAR,env=V,target=/both,required test \"$(printf %s \"$V\" | sha256sum | "
      "cut -d' ' -f1)\" = SUM3 && test \"$(sha256sum < /both | cut -d' ' -f1)\" = SUM3\n"
      "RUN --mount=type=secret,id=absent { test -e /run/secrets/absent && echo present || echo absent; } > "
      "/optional\n"
      "RUN --mount=type=secret,id=absent,env=ABSENT_VAR echo \"[${ABSENT_VAR-unset}]\" > /optional-env\n"
      "RUN env | grep -c MY_TOKEN > /env-later || true\n";
  df = replace_all(df, "SUM1", sha256(file_secret, root));
  df = replace_all(df, "SUM2", sha256(env_secret, root));
  df = replace_all(df, "SUM3", sha256(id_secret, root));
  write_file(ctx / "Dockerfile", df);

  const std::vector<std::string> env{"E2E_SECRET_VAR=" + env_secret, "E2E_ID_VAR=" + id_secret};
  const fs::path out = root.work() / "out";
  const fs::path oci = root.work() / "img.tar";
  auto build = [&](const std::vector<std::string>& more) {
    std::vector<std::string> args{"build",
                                  "--progress=plain",
                                  "-t",
                                  "secret-e2e:latest",
                                  "--secret",
                                  "id=mysecret,src=" + secret_file.string(),
                                  "--secret",
                                  "id=fromenv,env=E2E_SECRET_VAR",
                                  "--secret",
                                  "id=E2E_ID_VAR"};
    args.insert(args.end(), more.begin(), more.end());
    args.push_back(ctx.string());
    return builder_env(root, env, args);
  };
  Result r = build({"-o", "type=oci,dest=" + oci.string(), "-o", "type=local,dest=" + out.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());

  CHECK(slurp(out / "perm-default") == "400 0 0\n");
  CHECK(slurp(out / "perm-custom") == "440 1000 1001\n");
  CHECK(slurp(out / "env-only") == "nofile\n");
  CHECK(slurp(out / "optional") == "absent\n");
  CHECK(slurp(out / "optional-env") == "[]\n");  // set but empty, as BuildKit
  CHECK(slurp(out / "env-later") == "0\n");      // only the step that mounts it sees it
  // Mount points made for the secrets are not in any layer.
  CHECK_FALSE(fs::exists(out / "run"));
  CHECK_FALSE(fs::exists(out / "etc/app"));
  CHECK_FALSE(fs::exists(out / "both"));

  const std::vector<std::string> secrets{file_secret, env_secret, id_secret};
  CHECK_FALSE(holds_any(r.out + r.err, secrets));

  // Every blob of the image, every file of the store. First, the scan finds what it
  // looks for, plain and gzip-compressed.
  const fs::path control = root.dir() / "secrets";
  Result gz = run_process({"sh", "-c", "printf %s \"$0\" | gzip > \"$1\"", env_secret, (control / "c.gz").string()});
  REQUIRE_MESSAGE(gz.status == 0, gz.describe());
  CHECK(files_containing(control, secrets).size() == 2);
  const fs::path layout = root.work() / "oci";
  fs::create_directories(layout);
  Result x = run_process({"tar", "-xf", oci.string(), "-C", layout.string()});
  REQUIRE_MESSAGE(x.status == 0, x.describe());
  size_t blobs = 0;
  auto hits = files_containing(layout, secrets, &blobs);
  CHECK_MESSAGE(hits.empty(), builder::e2e::join(hits));
  CHECK(blobs >= 4);  // index, manifest, config, layers: the scan saw them
  size_t files = 0;
  hits = files_containing(root.store(), secrets, &files);
  CHECK_MESSAGE(hits.empty(), builder::e2e::join(hits));
  CHECK(files > 10);

  Result logs = root.builder({"history", "logs", "^1"});
  CHECK_MESSAGE(logs.status == 0, logs.describe());
  CHECK(logs.out.find("RUN --mount=type=secret,id=mysecret") != std::string::npos);
  CHECK_FALSE(holds_any(logs.out + logs.err, secrets));
  Result inspect = root.builder({"inspect", "secret-e2e:latest"});
  CHECK_MESSAGE(inspect.status == 0, inspect.describe());
  CHECK_FALSE(holds_any(inspect.out, secrets));

  // A new value is not a new cache key: every step is served from the cache.
  const std::string changed = random_text("e2e-changed-secret-");
  write_file(secret_file, changed);
  r = build({});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  auto states = builder::e2e::step_cache_states(r.err, "RUN");
  CHECK(states.size() == 7);
  for (const auto& [step, cached] : states) CHECK_MESSAGE(cached, step << " ran again\n" << r.err);
  hits = files_containing(root.store(), {changed});
  CHECK_MESSAGE(hits.empty(), builder::e2e::join(hits));
  CHECK(scratch_entries(root, "ssh").empty());
  root.check_no_mounts();
}

TEST_CASE("e2e: a required secret that is missing fails at its line; bad --secret values fail first") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = root.work() / "ctx";
  write_file(ctx / "Dockerfile",
             "FROM busybox\nRUN true\nRUN --mount=type=secret,id=needed,required=true cat /run/secrets/needed\n");
  Result r = builder_env(root, {}, {"build", "--progress=plain", ctx.string()});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("Dockerfile:3\n") != std::string::npos, r.err);
  CHECK(r.err.find(">>> RUN --mount=type=secret,id=needed,required=true") != std::string::npos);
  CHECK_MESSAGE(r.err.find("ERROR: failed to solve: secret needed: not found: this step requires it") !=
                    std::string::npos,
                r.err);

  auto fails_with = [&](const std::vector<std::string>& flags, const std::string& message) {
    std::vector<std::string> args{"build", "--progress=plain"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(ctx.string());
    Result f = builder_env(root, {}, args);
    CHECK(f.status != 0);
    CHECK_MESSAGE(f.err.find(message) != std::string::npos, "want: " << message << "\n" << f.describe());
    CHECK(f.err.find("#1 ") == std::string::npos);  // nothing ran
  };
  fails_with({"--secret", "id=needed,src=/nonexistent/secret"}, "/nonexistent/secret");
  fails_with({"--secret", "id=needed,bogus=1"}, "unexpected key 'bogus' in 'bogus=1'");
  fails_with({"--secret", "src=/etc/hostname"}, "secret missing ID");
  fails_with({"--secret", "id=x,type=vault"}, "unsupported secret type \"vault\"");
  fails_with({"--secret", "needed"}, "invalid field 'needed' must be a key=value pair");
  fails_with({"--ssh", "default"}, "invalid empty ssh agent socket: SSH_AUTH_SOCK is not set");
  fails_with({"--ssh", "k=/nonexistent/key"}, "/nonexistent/key");
  write_file(root.work() / "not-a-key", "hello\n");
  fails_with({"--ssh", "k=" + (root.work() / "not-a-key").string()}, "cannot add the key");
  fails_with({"--ssh", "a=" + (root.work() / "not-a-key").string(), "--ssh", "a"}, "duplicate agent ID \"a\"");
  CHECK_MESSAGE(processes_mentioning(root.store().string()).empty(),
                builder::e2e::join(processes_mentioning(root.store().string())));
  CHECK(scratch_entries(root, "ssh").empty());
}

TEST_CASE("e2e: RUN --mount=type=ssh relays an agent, read-only, through a socket with the mount's owner") {
  if (!builder::test::have_root()) return;
  if (!builder::e2e::require_tool("ssh-keygen") || !builder::e2e::require_tool("ssh-agent")) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path key = root.dir() / "keys" / "id_ed25519";
  fs::create_directories(key.parent_path());
  Result k = run_process({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-key", "-f", key.string()});
  REQUIRE_MESSAGE(k.status == 0, k.describe());

  const fs::path ctx = root.work() / "ctx";
  fs::create_directories(ctx);
  fs::copy_file(BUILDER_AGENT_TOOL, ctx / "agent-tool");
  write_file(ctx / "Dockerfile",
             "FROM busybox\n"
             "COPY agent-tool /agent-tool\n"
             "RUN --mount=type=ssh,id=mykey,mode=0660,uid=1000,gid=1001 { stat -c '%a %u %g %F' \"$SSH_AUTH_SOCK\"; "
             "echo \"$SSH_AUTH_SOCK\"; /agent-tool \"$SSH_AUTH_SOCK\" list; /agent-tool \"$SSH_AUTH_SOCK\" sign; "
             "/agent-tool \"$SSH_AUTH_SOCK\" remove-all; /agent-tool \"$SSH_AUTH_SOCK\" list; } > /ssh-out 2>&1\n"
             "RUN --mount=type=ssh,id=mykey,target=/tmp/agent.sock,required --mount=type=ssh,id=other "
             "{ /agent-tool /tmp/agent.sock list; echo \"$SSH_AUTH_SOCK\"; test -e /run/buildkit/ssh_agent.1 && "
             "echo other || echo no-other; } > /ssh-target 2>&1\n");
  const fs::path out = root.work() / "out";
  Result r = builder_env(root, {},
                         {"build", "--progress=plain", "--ssh", "mykey=" + key.string(), "-o",
                          "type=local,dest=" + out.string(), ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(out / "ssh-out") == "660 1000 1001 socket\n/run/buildkit/ssh_agent.0\n1 e2e-key\nsigned\nrefused\n1 e2e-key\n");
  CHECK(slurp(out / "ssh-target") == "1 e2e-key\n/tmp/agent.sock\nno-other\n");
  CHECK_FALSE(fs::exists(out / "run"));
  CHECK_FALSE(fs::exists(out / "tmp/agent.sock"));
  // The agent builder started for the key, and the relays, are gone.
  CHECK_MESSAGE(processes_mentioning(root.store().string()).empty(),
                builder::e2e::join(processes_mentioning(root.store().string())));
  CHECK(scratch_entries(root, "ssh").empty());
  root.check_no_mounts();

  // A user's agent at $SSH_AUTH_SOCK (`--ssh default`) and by path (`--ssh ID=SOCKET`).
  TestAgent agent;
  agent.sock = (root.dir() / "user-agent.sock").string();
  Result a = run_process({"ssh-agent", "-a", agent.sock});
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  auto p = a.out.find("SSH_AGENT_PID=");
  REQUIRE(p != std::string::npos);
  agent.pid = std::atoi(a.out.c_str() + p + 14);
  REQUIRE(agent.pid > 0);
  Result add = run_process({"env", "SSH_AUTH_SOCK=" + agent.sock, "ssh-add", "-q", key.string()});
  REQUIRE_MESSAGE(add.status == 0, add.describe());
  write_file(ctx / "Dockerfile",
             "FROM busybox\n"
             "COPY agent-tool /agent-tool\n"
             "RUN --mount=type=ssh /agent-tool \"$SSH_AUTH_SOCK\" list > /default-out 2>&1\n"
             "RUN --mount=type=ssh,id=byPath,required /agent-tool \"$SSH_AUTH_SOCK\" sign > /path-out 2>&1\n"
             "RUN --mount=type=ssh,id=absent { test -S \"$SSH_AUTH_SOCK\" && echo yes || echo no; echo "
             "\"$SSH_AUTH_SOCK\"; } > /optional-out\n");
  r = builder_env(root, {"SSH_AUTH_SOCK=" + agent.sock},
                  {"build", "--progress=plain", "--ssh", "default", "--ssh", "byPath=" + agent.sock, "-o",
                   "type=local,dest=" + out.string(), ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(out / "default-out") == "1 e2e-key\n");
  CHECK(slurp(out / "path-out") == "signed\n");
  CHECK(slurp(out / "optional-out") == "no\n/run/buildkit/ssh_agent.0\n");
  // The user's agent still has its key: the step could not remove it.
  Result list = run_process({"env", "SSH_AUTH_SOCK=" + agent.sock, "ssh-add", "-l"});
  CHECK(list.out.find("e2e-key") != std::string::npos);

  // A required agent that was not given fails at its line.
  write_file(ctx / "Dockerfile", "FROM busybox\nRUN --mount=type=ssh,id=deploy,required true\n");
  r = builder_env(root, {}, {"build", "--progress=plain", ctx.string()});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("Dockerfile:2\n") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("ERROR: failed to solve: no SSH key \"deploy\" forwarded from the client") !=
                    std::string::npos,
                r.err);
  CHECK(scratch_entries(root, "ssh").empty());
  root.check_no_mounts();
}
