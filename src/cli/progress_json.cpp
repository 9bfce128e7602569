// cli/progress_json.cpp — the rawjson progress stream.
#include "progress_json.h"

#include <chrono>
#include <ctime>
#include <set>

#include "base/digest.h"
#include "base/json.h"
#include "solver/graph/encode.h"

namespace builder::cli {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string rfc3339_nano(int64_t unix_ns) {
  int64_t secs = unix_ns / 1000000000;
  int64_t frac = unix_ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09lld", static_cast<long long>(frac));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

std::string base64(std::string_view data) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                 static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += rest == 2 ? kAlphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

JsonProgress::JsonProgress(const graph::Definition& def, const graph::SourceMap& source_map, std::FILE* out)
    : def_(def), source_map_(source_map), out_(out) {
  // Inputs precede their vertex (graph::validate), so one pass names every vertex.
  std::set<std::string> seen;
  digests_.reserve(def.vertices.size());
  for (size_t i = 0; i < def.vertices.size(); ++i) {
    std::string material = graph::encode_op(def.vertices[i].op);
    for (int in : def.vertices[i].inputs)
      material += '\0' + (in >= 0 && static_cast<size_t>(in) < i ? digests_[in] : std::to_string(in));
    std::string d = "sha256:" + base::sha256_hex(material);
    // Two equal vertices in one definition would be one vertex to a reader of the
    // stream; keep them apart.
    if (!seen.insert(d).second) d = "sha256:" + base::sha256_hex(material + '\0' + std::to_string(i));
    seen.insert(d);
    digests_.push_back(std::move(d));
  }
}

const std::string& JsonProgress::digest(int vertex) const {
  static const std::string kNone;
  return vertex >= 0 && static_cast<size_t>(vertex) < digests_.size() ? digests_[vertex] : kNone;
}

void JsonProgress::write(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void JsonProgress::operator()(const solver::Event& ev) {
  const int64_t now = now_ns();
  if (ev.kind == solver::Event::Kind::Start) started_[ev.vertex] = now;
  auto st = started_.find(ev.vertex);
  const int64_t started = st == started_.end() ? now : st->second;

  base::Json status;
  if (ev.kind == solver::Event::Kind::Log) {
    if (ev.text.empty()) return;
    base::Json log;
    log["vertex"] = digest(ev.vertex);
    log["stream"] = 1;
    log["data"] = base64(ev.text);
    log["timestamp"] = rfc3339_nano(now);
    status["logs"] = base::Json::array({log});
  } else {
    base::Json v;
    v["digest"] = digest(ev.vertex);
    if (ev.vertex >= 0 && static_cast<size_t>(ev.vertex) < def_.vertices.size() &&
        !def_.vertices[ev.vertex].inputs.empty()) {
      base::Json inputs = base::Json::array();
      for (int in : def_.vertices[ev.vertex].inputs) inputs.push_back(digest(in));
      v["inputs"] = inputs;
    }
    v["name"] = vertex_name(source_map_, ev.vertex);
    v["started"] = rfc3339_nano(started);
    switch (ev.kind) {
      case solver::Event::Kind::Cached:
        v["completed"] = rfc3339_nano(now);
        v["cached"] = true;
        break;
      case solver::Event::Kind::Miss:
        v["cacheMiss"] = ev.text;
        break;
      case solver::Event::Kind::Done:
        v["completed"] = rfc3339_nano(now);
        break;
      case solver::Event::Kind::Error:
        v["completed"] = rfc3339_nano(now);
        v["error"] = ev.text;
        break;
      case solver::Event::Kind::Start:
      case solver::Event::Kind::Log:
        break;
    }
    status["vertexes"] = base::Json::array({v});
  }
  // Step names and errors may hold bytes that are not UTF-8: replaced, never a throw.
  write(status.dump(-1, ' ', false, base::Json::error_handler_t::replace));
}

void JsonProgress::finish() { std::fflush(out_); }

}  // namespace builder::cli
