// Stage listing for `--call=targets` (BuildKit's ListTargets) and the description
// comments the outline and the targets share (getDocComment).
#include "frontend/outline.h"

#include "base/strings.h"

namespace builder::frontend {

std::string doc_comment(const std::vector<std::string>& comments, const std::string& name) {
  if (name.empty()) return "";
  for (const auto& line : comments)
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  return "";
}

std::vector<TargetInfo> list_targets(const ast::File& file) {
  std::vector<TargetInfo> out;
  for (const auto& ins : file.instructions) {
    if (ins.name != "from") continue;
    TargetInfo t;
    if (ins.args.size() == 3 && base::to_lower(ins.args[1]) == "as")
      t.name = base::to_lower(ins.args[2]);
    else if (ins.args.size() != 1)
      throw base::Error("FROM requires either one or three arguments", ins.range);
    t.base = ins.args[0];
    for (const auto& f : ins.flags)
      if (f.rfind("--platform=", 0) == 0) t.platform = f.substr(11);
    t.description = doc_comment(ins.comments, t.name);
    t.range = ins.range;
    out.push_back(std::move(t));
  }
  if (out.empty()) throw base::Error("dockerfile contains no stages to build");
  out.back().is_default = true;
  return out;
}

}  // namespace builder::frontend
