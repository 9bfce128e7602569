// solver/graph/encode.h — the canonical byte encoding of ops, and digests over it.
// The encoding is versioned: changing one byte of it bumps kEncodingVersion, which
// invalidates every cache key derived from it.
#pragma once

#include <string>

#include "solver/graph/ops.h"

namespace builder::graph {

inline constexpr int kEncodingVersion = 1;

/// Canonical encoding of one vertex's op (not its inputs): compact JSON with a fixed
/// field order, prefixed by the version. Equal ops give equal bytes.
std::string encode_op(const Op& op);
/// Human description of an op, for debugging ("exec [/bin/sh -c make]").
std::string describe(const Op& op);
/// sha256 over every vertex's encoding and edges plus the result index.
std::string definition_digest(const Definition& def);
/// Checks edges (inputs precede their vertex), the result index, and op invariants;
/// throws base::Error naming the bad vertex.
void validate(const Definition& def);

}  // namespace builder::graph
