// exec/network.h — the network side of a container: the builder's shared sandbox
// network (one network namespace per builder process, NATed to the outside by a
// slirp4netns child, so the host's interfaces, routes and firewall are never touched),
// and the /etc/hosts and /etc/resolv.conf a container gets. Knows nothing of RunSpecs.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/fd.h"

namespace builder::exec {

namespace detail {
class Slirp;
}

/// The builder's shared sandbox network: a network namespace with lo and tap0
/// (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3) NATed by slirp4netns. Connections to
/// 10.0.2.2 do not reach the host's loopback (--disable-host-loopback). Every container
/// of this process with Network::Default joins this one namespace (setns), so a RUN step
/// costs one setns() and no network setup.
///
/// Created on first get(); thread-safe. slirp4netns is a child of builder that ends
/// when builder ends (its exit fd closes, and PR_SET_PDEATHSIG), so nothing stays on the
/// host: the namespace goes with its last user.
class SharedNetwork {
 public:
  /// The process's shared network, set up on the first call (a few milliseconds).
  /// Throws base::Error with the reason if it cannot be set up (slirp4netns missing or
  /// failing); a failure is remembered and thrown again by later calls without retrying,
  /// until shutdown(). If slirp4netns died since, it is started again (with a warning).
  static SharedNetwork& get();
  /// The same object without setting anything up (netns_fd() is -1 until a get()
  /// succeeds): to shutdown() after a failure, which get() would throw again.
  static SharedNetwork& current() noexcept;

  /// The namespace, for setns(fd, CLONE_NEWNET) in a container's child. O_CLOEXEC;
  /// owned here: valid until shutdown().
  int netns_fd() const { return netns_.get(); }
  /// /etc/resolv.conf for a container on this network: "nameserver 10.0.2.3\n" (slirp's
  /// DNS forwarder, which asks the host's resolvers) plus the search and options lines of
  /// the host's resolv.conf.
  const std::string& resolv_conf() const { return resolv_conf_; }

  /// Ends slirp4netns (closes its exit fd, SIGKILL after 2 s), reaps it and closes the
  /// namespace fd; also forgets a remembered failure, so the next get() starts afresh.
  /// For process exit (it runs from a static destructor too) and tests: no container may
  /// be using the network. Never throws.
  void shutdown() noexcept;

  SharedNetwork(const SharedNetwork&) = delete;
  SharedNetwork& operator=(const SharedNetwork&) = delete;

 private:
  SharedNetwork() = default;
  ~SharedNetwork();
  void start();  // under mu_

  std::mutex mu_;
  base::Fd netns_;
  std::unique_ptr<detail::Slirp> slirp_;
  std::string resolv_conf_;
  std::optional<std::string> failure_;
  int owner_pid_ = 0;  // the process that started slirp4netns (not a forked child)
};

/// /etc/hosts for a container with this hostname, as BuildKit writes it:
/// "127.0.0.1\tlocalhost <hostname>\n::1\tlocalhost ip6-localhost ip6-loopback\n".
/// Throws base::Error if the hostname has characters a hosts file cannot hold.
std::string hosts_file(const std::string& hostname);

/// /etc/resolv.conf for a container on the host network (host_network) or an isolated
/// one, from the host's (see resolv_conf_for()).
std::string host_resolv_conf(bool host_network = false);

/// The resolv.conf a container gets, given the host's `host_content`. As BuildKit does:
/// comments dropped, nameservers that are not IP addresses dropped, the last search line
/// (or `domain`) kept, options accumulated, other lines kept. Not on the host network,
/// loopback nameservers (127.0.0.0/8, ::1) are dropped, since they cannot be reached
/// from another namespace. If no nameserver remains, Google's public resolvers
/// (8.8.8.8, 8.8.4.4, 2001:4860:4860::8888, 2001:4860:4860::8844), as BuildKit uses.
std::string resolv_conf_for(std::string_view host_content, bool host_network);

}  // namespace builder::exec
