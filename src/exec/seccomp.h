// exec/seccomp.h — Docker's default seccomp profile for x86_64 (with its i386 and x32
// sub-architectures) as a classic BPF program, built once with libseccomp, and the
// async-signal-safe call that loads it in a sandbox child. The allow list follows the
// default profile of moby/profiles for a container holding Docker's 14 default
// capabilities. Knows nothing of RunSpec or of how the child is set up.
#pragma once

struct sock_fprog;

namespace builder::exec {

/// Docker's default seccomp profile for a container with Docker's 14 default capabilities,
/// as a classic BPF program ready for seccomp(SECCOMP_SET_MODE_FILTER): default action
/// EPERM; the profile's allow list; chroot (CAP_SYS_CHROOT); ptrace and process_vm_* (the
/// profile's minKernel 4.8, checked against the running kernel); personality only with the
/// profile's values; clone without namespace flags; clone3 fails with ENOSYS so libcs fall
/// back to clone; socket refused (EPERM) for AF_ALG and AF_VSOCK. Names the linked
/// libseccomp does not know (syscalls newer than it) are left out, so they get EPERM.
/// Built once (thread-safe, lazily); the program stays valid for the life of the process.
/// Throws base::Error if libseccomp fails (a later call tries again).
const struct sock_fprog& default_seccomp_filter();

/// Loads `prog` in the calling thread with seccomp(SECCOMP_SET_MODE_FILTER, 0, ...).
/// The caller must hold CAP_SYS_ADMIN or have set no_new_privs. Async-signal-safe and
/// allocation-free, for a cloned child between clone() and execve(): returns 0, or -1 with
/// errno set.
int load_seccomp_filter(const struct sock_fprog& prog) noexcept;

}  // namespace builder::exec
