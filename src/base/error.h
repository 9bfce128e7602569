// base/error.h — the error types every module throws across module boundaries.
// Owns Error (message + context lines + optional SourceRange) and SysError (errno,
// the failing call and the path). Knows nothing of Dockerfiles or the solver.
#pragma once

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace builder::base {

/// A span in a source file; lines and columns are 1-based, end inclusive.
struct SourceRange {
  std::string file;
  int start_line = 0;
  int start_col = 0;
  int end_line = 0;
  int end_col = 0;

  bool valid() const { return start_line > 0; }
  /// "file:line:col"
  std::string str() const;
};

/// The error thrown across modules. what() is the message followed by the context
/// lines added while unwinding ("while lowering stage `build`").
class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, std::optional<SourceRange> where = std::nullopt);

  const std::string& message() const { return message_; }
  const std::vector<std::string>& context() const { return context_; }
  const std::optional<SourceRange>& where() const { return where_; }
  /// Appends a context line; returns *this so `catch (Error& e) { throw e.add(...); }`.
  Error& add_context(std::string line);
  Error& set_where(SourceRange r);
  /// A digest or key of the failing graph vertex, set by the solver; empty if none.
  const std::string& vertex() const { return vertex_; }
  Error& set_vertex(std::string v) { vertex_ = std::move(v); return *this; }
  /// Free-form detail printed after the message (e.g. the tail of a step's output).
  const std::string& detail() const { return detail_; }
  Error& set_detail(std::string d) { detail_ = std::move(d); return *this; }
  /// Exit code a process reported, when the error is a failed step; -1 otherwise.
  int exit_code() const { return exit_code_; }
  Error& set_exit_code(int c) { exit_code_ = c; return *this; }

  const char* what() const noexcept override { return full_.c_str(); }

 private:
  void rebuild();
  std::string message_;
  std::vector<std::string> context_;
  std::optional<SourceRange> where_;
  std::string vertex_;
  std::string detail_;
  int exit_code_ = -1;
  std::string full_;
};

/// A failed system call: "mount overlay on `/x/rootfs`: EPERM (Operation not permitted)".
class SysError : public Error {
 public:
  SysError(int err, std::string call, std::string path = {});
  int err() const { return err_; }

 private:
  int err_;
};

/// Throws SysError(errno, call, path) when rc < 0; returns rc otherwise.
long check_sys(long rc, const char* call, const std::string& path = {});

}  // namespace builder::base
