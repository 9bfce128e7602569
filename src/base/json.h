// base/json.h — the project's JSON type (nlohmann::ordered_json keeps key order,
// which image configs and canonical encodings rely on).
#pragma once

#include <nlohmann/json.hpp>

namespace builder::base {
using Json = nlohmann::ordered_json;
}  // namespace builder::base
