#include "solver/ops/result.h"

#include "base/error.h"
#include "base/json.h"

namespace builder::ops {

std::string encode_result(const Result& r) { return base::Json(r.layers).dump(); }

Result decode_result(const std::string& s) {
  auto j = base::Json::parse(s, nullptr, false);
  if (!j.is_array()) throw base::Error("malformed cache result `" + s + "`");
  Result r;
  for (const auto& e : j) {
    if (!e.is_string()) throw base::Error("malformed cache result `" + s + "`");
    r.layers.push_back(e.get<std::string>());
  }
  return r;
}

}  // namespace builder::ops
