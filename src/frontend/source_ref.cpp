// frontend/source_ref.cpp — ADD source classification, following BuildKit's
// dfgitutil.ParseGitRef, gitutil.ParseURL and sshutil's scp-style pattern.
#include "frontend/source_ref.h"

#include <map>
#include <regex>
#include <vector>

#include "base/error.h"
#include "base/strings.h"

namespace builder::frontend {
namespace {

/// %XX and '+' decoded, as Go's url.QueryUnescape.
std::string query_unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (s[i] == '%') {
      throw base::Error("invalid URL escape in query \"" + s + "\"");
    } else {
      out += s[i];
    }
  }
  return out;
}

/// gitutil's parseOpts: "ref:subdir", subdir cleaned as path.Join("/", subdir).
void parse_fragment(const std::string& fragment, GitRef& g) {
  if (fragment.empty()) return;
  auto colon = fragment.find(':');
  g.ref = fragment.substr(0, colon);
  std::string sub = colon == std::string::npos ? "" : fragment.substr(colon + 1);
  sub = base::clean_path("/" + sub);
  g.subdir = sub == "/" ? "" : sub.substr(1);
}

bool parse_bool(const std::string& key, const std::string& v) {
  std::string l = base::to_lower(v);
  if (v.empty() || v == "1" || l == "t" || l == "true") return true;
  if (v == "0" || l == "f" || l == "false") return false;
  throw base::Error("invalid " + key + " value: \"" + v + "\"");
}

/// dfgitutil's loadQuery, for the options builder implements.
void parse_query(const std::string& query, GitRef& g) {
  if (query.empty()) return;
  std::map<std::string, std::vector<std::string>> q;
  for (const auto& part : base::split(query, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    q[query_unescape(part.substr(0, eq))].push_back(eq == std::string::npos ? "" : query_unescape(part.substr(eq + 1)));
  }
  std::string tag, branch;
  for (const auto& [k, vs] : q) {
    if (vs.size() > 1) throw base::Error("query \"" + k + "\" has multiple values");
    const std::string& v = vs[0];
    if (v.empty() && k != "keep-git-dir" && k != "submodules" && k != "fetch-by-commit")
      throw base::Error("query \"" + k + "\" has no value");
    if (k == "ref") {
      if (!g.ref.empty() && g.ref != v) throw base::Error("ref conflicts: \"" + g.ref + "\" vs \"" + v + "\"");
      g.ref = v;
    } else if (k == "tag") {
      tag = v;
    } else if (k == "branch") {
      branch = v;
    } else if (k == "subdir") {
      std::string sub = base::clean_path("/" + v);
      sub = sub == "/" ? "" : sub.substr(1);
      if (!g.subdir.empty() && g.subdir != sub) throw base::Error("subdir conflicts: \"" + g.subdir + "\" vs \"" + v + "\"");
      g.subdir = sub;
    } else if (k == "checksum" || k == "commit") {
      g.checksum = v;
    } else if (k == "keep-git-dir") {
      g.keep_git_dir = parse_bool(k, v);
    } else if (k == "submodules") {
      // Submodules are always fetched; turning that off is not implemented.
      if (!parse_bool(k, v)) throw base::Error("git query \"submodules=false\" is not supported yet");
    } else if (k == "mtime" || k == "fetch-by-commit") {
      throw base::Error("git query \"" + k + "\" is not supported yet");
    } else {
      throw base::Error("unexpected query \"" + k + "\"");
    }
  }
  if (!tag.empty()) {
    if (tag.rfind("refs/tags/", 0) != 0) tag = "refs/tags/" + tag;
    if (!g.ref.empty() && g.ref != tag) throw base::Error("ref conflicts: \"" + g.ref + "\" vs \"" + tag + "\"");
    g.ref = tag;
  }
  if (!branch.empty()) {
    if (!tag.empty()) throw base::Error("branch conflicts with tag");
    if (branch.rfind("refs/heads/", 0) != 0) branch = "refs/heads/" + branch;
    if (!g.ref.empty() && g.ref != branch) throw base::Error("ref conflicts: \"" + g.ref + "\" vs \"" + branch + "\"");
    g.ref = branch;
  }
}

}  // namespace

bool is_http_url(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

std::optional<GitRef> parse_git_ref(const std::string& s) {
  if (s.rfind("./", 0) == 0 || s.rfind("../", 0) == 0) return std::nullopt;
  // github.com/x/y: indistinguishable from a path, so a path for ADD (as BuildKit).
  if (s.rfind("github.com/", 0) == 0) return std::nullopt;
  static const std::regex proto(R"(^([a-zA-Z0-9]+)://)");
  static const std::regex scp(R"(^([a-zA-Z0-9_-]+)@([a-zA-Z0-9.-]+):(.*?)(?:\?(.*?))?(?:#(.*))?$)");
  std::smatch m;
  GitRef g;
  if (std::regex_search(s, m, proto)) {
    std::string scheme = base::to_lower(m[1].str());
    if (scheme != "http" && scheme != "https" && scheme != "ssh" && scheme != "git") return std::nullopt;
    std::string rest = s;
    std::string fragment, query;
    auto hash = rest.find('#');
    if (hash != std::string::npos) {
      fragment = rest.substr(hash + 1);
      rest = rest.substr(0, hash);
    }
    auto qm = rest.find('?');
    if (qm != std::string::npos) {
      query = rest.substr(qm + 1);
      rest = rest.substr(0, qm);
    }
    std::string after = rest.substr(m[0].length());
    auto slash = after.find('/');
    std::string path = slash == std::string::npos ? "" : after.substr(slash);
    if ((scheme == "http" || scheme == "https") && (path.size() < 4 || path.compare(path.size() - 4, 4, ".git") != 0))
      return std::nullopt;
    g.remote = rest;
    parse_fragment(fragment, g);
    parse_query(query, g);
    return g;
  }
  if (std::regex_match(s, m, scp)) {
    std::string remote = m[1].str() + "@" + m[2].str() + ":" + m[3].str();
    g.remote = remote;
    parse_fragment(m[5].str(), g);
    parse_query(m[4].str(), g);
    return g;
  }
  return std::nullopt;
}

std::string url_file_name(const std::string& url) {
  std::string rest = url;
  auto scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  auto cut = rest.find_first_of("?#");
  if (cut != std::string::npos) rest = rest.substr(0, cut);
  auto slash = rest.find('/');
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  // path.Base: trailing slashes dropped, then the last element.
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string base = path.empty() ? "" : path.substr(path.rfind('/') + 1);
  if (base.empty() || base == "." || base == "/") return "__unnamed__";
  if (base == "..") return "__unnamed__";  // never a name that leaves the source
  // A percent-encoded name is the decoded one, as Go's url.Parse gives Path.
  try {
    std::string decoded;
    for (size_t i = 0; i < base.size(); ++i) {
      if (base[i] == '%' && i + 2 < base.size() + 0 && std::isxdigit(static_cast<unsigned char>(base[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(base[i + 2]))) {
        decoded += static_cast<char>(std::stoi(base.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += base[i];
      }
    }
    if (decoded.empty() || decoded.find('/') != std::string::npos || decoded == "." || decoded == "..")
      return "__unnamed__";
    return decoded;
  } catch (...) {
    return base;
  }
}

}  // namespace builder::frontend
