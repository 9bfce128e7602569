// base/fs.h — file-system helpers with crash-safe writes. Paths here are host paths
// the program controls; paths inside image roots are resolved by exec/ and image/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace builder::base {

/// Reads a whole file; throws SysError.
std::string read_file(const std::string& path);
/// Writes via `path.tmp-<rand>` + fsync + rename + fsync(dir): readers see the old or
/// the new content, never a torn one.
void write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);
/// mkdir -p; throws SysError.
void make_dirs(const std::string& path, int mode = 0755);
/// rm -rf that also handles read-only directories and never follows symlinks;
/// a missing path is not an error.
void remove_all(const std::string& path);
/// fsync of a directory (to persist a rename or create in it).
void fsync_dir(const std::string& path);
bool path_exists(const std::string& path);
/// Apparent size of a tree (as `du --apparent-size -b`): sizes of non-directories, hard
/// links counted once, symlinks never followed. With `tolerate_changes`, entries that
/// vanish or cannot be read while it walks are skipped (a tree in use) and a missing
/// `dir` is 0; otherwise they throw SysError.
int64_t tree_size(const std::string& dir, bool tolerate_changes = false);
/// Random lowercase hex of `nbytes` bytes (2*nbytes characters) from getrandom(2).
std::string random_hex(size_t nbytes);
/// The target of the symlink at `path` (any length); throws SysError.
std::string read_link(const std::string& path);
/// `name` in $PATH (the standard directories when PATH is unset or empty) as execvp
/// would find it: the first executable candidate, or "" when there is none.
std::string find_program(const std::string& name);
/// Joins two paths with exactly one '/'.
std::string path_join(std::string_view a, std::string_view b);

}  // namespace builder::base
