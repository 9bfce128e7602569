// cache/gc.cpp — leases, disk usage, prune and the GC policy. Every decision is made
// inside one BEGIN IMMEDIATE transaction over a model of the whole cache (entries,
// snapshots, blobs, live leases, what images hold), so a build committing, leasing or
// looking up in another process sees either all of a prune or none of it.
#include "cache/gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <tuple>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/log.h"
#include "base/strings.h"

namespace builder::cache {
namespace {

const char* const kTables = R"sql(
CREATE TABLE IF NOT EXISTS leases(id TEXT PRIMARY KEY, pid INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lease_resources(lease TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
  PRIMARY KEY(lease, kind, ref));
CREATE TABLE IF NOT EXISTS cache_mount_sizes(path TEXT PRIMARY KEY, size INTEGER NOT NULL, stamp TEXT NOT NULL);
)sql";

void ensure_tables(Db& db) { db.exec(kTables); }

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

int64_t now_ns() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t ns_of(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }

// File timestamps come from the kernel's coarse clock, which lags the clock a lease
// reads by at most one tick (4 ms at HZ=250, 10 ms at HZ=100): anything stamped this
// close before a lease counts as written after it. Kept well below the time a process
// takes to start, so that a previous build's layers are never "fresh" for the next one.
constexpr int64_t kClockSlackNs = 20000000;

int64_t to_int(const std::optional<std::string>& v) { return v ? std::atoll(v->c_str()) : 0; }

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return names;
    throw base::SysError(errno, "opendir", dir);
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}


std::string mtime_stamp(const struct stat& st) {
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// ---------------------------------------------------------------- cache mounts

// root/cache-mounts/<hash>/<n>/data, locked through root/cache-mounts/<hash>/<n>.lock
// (ops/ LocalExecutor::cache_mount_dir): LOCK_SH while shared, LOCK_EX while private
// or locked. Whoever gets LOCK_EX without waiting knows nobody uses the mount.
struct Mount {
  std::string rel;  // "<hash>/<n>"
  std::string dir;
  int64_t size = 0;
  int64_t created = 0;
  int64_t last_used = 0;
  bool in_use = false;
};

bool is_digits(const std::string& s) {
  return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

// Probes a mount's lock without waiting. Returns the locked fd (LOCK_EX held) when
// nobody uses it, an empty Fd when somebody does.
base::Fd try_lock_mount(const std::string& dir) {
  int fd = ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return {};
  base::Fd lock(fd);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0) return {};
  return lock;
}

std::vector<Mount> scan_mounts(Store& store) {
  std::vector<Mount> out;
  std::string base = store.root() + "/cache-mounts";
  for (const auto& hash : list_dir(base)) {
    std::string hdir = base + "/" + hash;
    struct stat hst;
    if (::lstat(hdir.c_str(), &hst) < 0 || !S_ISDIR(hst.st_mode)) continue;
    for (const auto& inst : list_dir(hdir)) {
      if (!is_digits(inst)) continue;
      Mount m;
      m.rel = hash + "/" + inst;
      m.dir = hdir + "/" + inst;
      struct stat dst;
      if (::lstat((m.dir + "/data").c_str(), &dst) < 0 || !S_ISDIR(dst.st_mode)) continue;
      m.created = dst.st_ctim.tv_sec;
      struct stat lst;
      bool have_lock = ::stat((m.dir + ".lock").c_str(), &lst) == 0;
      m.last_used = have_lock ? std::max<int64_t>(lst.st_mtim.tv_sec, dst.st_mtim.tv_sec) : dst.st_mtim.tv_sec;
      base::Fd lock = try_lock_mount(m.dir);
      m.in_use = !lock.valid();
      // The remembered size holds while the lock file keeps the stamp of its last use
      // and nobody uses the mount now.
      std::string stamp = have_lock ? mtime_stamp(lst) : "";
      std::optional<int64_t> known;
      if (!m.in_use && !stamp.empty()) {
        auto rows = store.db().query("SELECT size FROM cache_mount_sizes WHERE path=?1 AND stamp=?2", {m.rel, stamp});
        if (!rows.empty()) known = to_int(rows[0][0]);
      }
      m.size = known ? *known : base::tree_size(m.dir + "/data", /*tolerate_changes=*/true);
      if (!known && !m.in_use && !stamp.empty()) {
        store.db().exec("INSERT OR REPLACE INTO cache_mount_sizes(path, size, stamp) VALUES(?1, ?2, ?3)",
                        {m.rel, static_cast<long long>(m.size), stamp});
      }
      out.push_back(std::move(m));
    }
  }
  return out;
}

// ---------------------------------------------------------------- the model

struct Snap {
  std::string id, parent, blob;
  int64_t size = 0, created = 0;
  int64_t committed_ns = 0;  // when its directory was renamed into place (its ctime)
  int64_t last_used = 0;  // the latest use of an entry naming it; `created` if none
  int refs = 0;           // entries naming it
  std::vector<size_t> entries;
  std::vector<std::string> children;  // snapshots whose parent it is
  bool leased = false;
  bool removing = false;  // being removed (its entries may still be going)
  bool image_used = false;  // its parent chain is a prefix of a tagged image's layers
  bool removed = false;
};

struct Entry {
  std::string key;
  std::vector<std::string> layers;
  int64_t last_used = 0;
  bool broken = false;  // names a snapshot that does not exist
  bool removed = false;
};

struct Blob {
  int64_t size = 0, mtime = 0;
  int64_t written_ns = 0;  // last write or rename into place
  bool image = false, leased = false;
  int snap_refs = 0;  // remaining snapshots whose exported blob it is
  bool removed = false;
};

struct Model {
  std::map<std::string, Snap> snaps;
  std::vector<Entry> entries;
  std::map<std::string, Blob> blobs;  // present on disk, by digest string
  std::vector<Mount> mounts;
  std::optional<int64_t> oldest_lease;  // creation of the oldest live lease, unix ns

  // Written after a live lease began: a build may still be about to name it.
  bool fresh(int64_t ns) const { return oldest_lease && ns >= *oldest_lease - kClockSlackNs; }
  bool snap_in_use(const Snap& s) const { return s.leased || fresh(s.committed_ns); }
  bool blob_kept(const Blob& b) const { return b.image || b.leased || b.snap_refs > 0 || fresh(b.written_ns); }

  int64_t total() const {
    int64_t t = 0;
    for (const auto& [id, s] : snaps)
      if (!s.removed) t += s.size;
    for (const auto& [d, b] : blobs)
      if (!b.removed && !b.image) t += b.size;
    for (const auto& m : mounts) t += m.size;
    return t;
  }
};

int remove_dead_leases_in(Store& store) {
  int n = 0;
  for (const auto& r : store.db().query("SELECT id, pid FROM leases")) {
    int pid = static_cast<int>(to_int(r[1]));
    if (pid > 0 && process_alive(store.root(), pid)) continue;
    store.db().exec("DELETE FROM lease_resources WHERE lease=?1", {r[0].value_or("")});
    store.db().exec("DELETE FROM leases WHERE id=?1", {r[0].value_or("")});
    ++n;
  }
  return n;
}

// Call inside a transaction.
Model load_model(Store& store, const ImageRefsFn& images, std::vector<Mount> mounts) {
  Model m;
  m.mounts = std::move(mounts);
  remove_dead_leases_in(store);
  for (const auto& r : store.db().query("SELECT MIN(created) FROM leases"))
    if (r[0]) m.oldest_lease = to_int(r[0]);

  for (const auto& r : store.db().query("SELECT id, parent, created, size, blob_digest, blob_size FROM snapshots")) {
    Snap s;
    s.id = r[0].value_or("");
    s.parent = r[1].value_or("");
    s.created = to_int(r[2]);
    s.size = to_int(r[3]);
    s.blob = r[4].value_or("");
    s.last_used = s.created;
    struct stat st;
    std::string dir = store.snapshots().base_dir() + "/" + s.id;
    s.committed_ns = ::lstat(dir.c_str(), &st) == 0 ? ns_of(st.st_ctim) : s.created * 1000000000;
    m.snaps.emplace(s.id, std::move(s));
  }
  for (const auto& r : store.db().query("SELECT key, value, last_used FROM cache_index ORDER BY key")) {
    // Values that are not lists of snapshot ids are not ours to judge: left alone.
    base::Json j = base::Json::parse(r[1].value_or(""), nullptr, /*allow_exceptions=*/false);
    if (!j.is_array()) continue;
    Entry e;
    e.key = r[0].value_or("");
    e.last_used = to_int(r[2]);
    bool opaque = false;
    for (const auto& el : j) {
      if (!el.is_string()) {
        opaque = true;
        break;
      }
      e.layers.push_back(el.get<std::string>());
    }
    if (opaque) continue;
    size_t idx = m.entries.size();
    std::set<std::string> once;
    for (const auto& l : e.layers) {
      auto it = m.snaps.find(l);
      if (it == m.snaps.end()) {
        e.broken = true;
        continue;
      }
      if (!once.insert(l).second) continue;
      it->second.refs++;
      it->second.entries.push_back(idx);
      it->second.last_used = std::max(it->second.last_used, e.last_used);
    }
    m.entries.push_back(std::move(e));
  }
  for (const auto& r : store.db().query(
           "SELECT r.kind, r.ref FROM lease_resources r JOIN leases l ON l.id = r.lease")) {
    std::string kind = r[0].value_or(""), ref = r[1].value_or("");
    if (kind == "snapshot") {
      if (auto it = m.snaps.find(ref); it != m.snaps.end()) it->second.leased = true;
    } else if (kind == "blob") {
      m.blobs[ref].leased = true;  // size filled below if present
    }
  }
  std::string bdir = store.root() + "/content/blobs/sha256";
  std::map<std::string, Blob> present;
  for (const auto& name : list_dir(bdir)) {
    struct stat st;
    if (::lstat((bdir + "/" + name).c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
    std::string d = "sha256:" + name;
    Blob b;
    b.size = st.st_size;
    b.mtime = st.st_mtim.tv_sec;
    b.written_ns = std::max(ns_of(st.st_mtim), ns_of(st.st_ctim));
    if (auto it = m.blobs.find(d); it != m.blobs.end()) b.leased = it->second.leased;
    present.emplace(d, b);
  }
  m.blobs = std::move(present);
  for (const auto& [id, s] : m.snaps)
    if (auto it = m.blobs.find(s.blob); !s.blob.empty() && it != m.blobs.end()) it->second.snap_refs++;

  ImageRefs refs = images ? images() : ImageRefs{};
  for (const auto& d : refs.blobs)
    if (auto it = m.blobs.find(d); it != m.blobs.end()) it->second.image = true;
  std::set<std::string> prefixes;
  for (const auto& chain : refs.chains) {
    std::string p;
    for (const auto& d : chain) prefixes.insert(p += d + ";");
  }
  // A snapshot's blob chain follows its parents; memoised, "" when a link is unknown.
  std::map<std::string, std::string> chain_of;
  std::function<std::string(const std::string&, int)> chain = [&](const std::string& id, int depth) -> std::string {
    if (auto it = chain_of.find(id); it != chain_of.end()) return it->second;
    auto it = m.snaps.find(id);
    std::string c;
    if (it != m.snaps.end() && !it->second.blob.empty() && depth < 4096) {
      if (it->second.parent.empty()) {
        c = it->second.blob + ";";
      } else {
        std::string below = chain(it->second.parent, depth + 1);
        if (!below.empty()) c = below + it->second.blob + ";";
      }
    }
    chain_of[id] = c;
    return c;
  };
  for (auto& [id, s] : m.snaps) {
    std::string c = chain(id, 0);
    s.image_used = !c.empty() && prefixes.count(c);
    if (auto it = m.snaps.find(s.parent); !s.parent.empty() && it != m.snaps.end()) it->second.children.push_back(id);
  }
  return m;
}

std::string short_digest(const std::string& d) {
  auto colon = d.find(':');
  std::string hex = colon == std::string::npos ? d : d.substr(colon + 1);
  return hex.substr(0, 12);
}

std::string snapshot_description(const Snap& s) {
  if (s.refs == 0) return "unreferenced layer";
  if (s.image_used) return "layer of a tagged image" + (s.blob.empty() ? "" : " (" + short_digest(s.blob) + ")");
  return "build cache layer";
}

UsageRecord snap_record(const Model& m, const Snap& s, int64_t blob_bytes) {
  UsageRecord r;
  r.kind = RecordKind::Snapshot;
  r.id = s.id;
  r.parent = s.parent;
  r.size = s.size + blob_bytes;
  r.shared = s.image_used;
  r.in_use = m.snap_in_use(s);
  r.created = s.created;
  r.last_used = s.refs > 0 ? s.last_used : 0;
  r.usage_count = s.refs;
  r.description = snapshot_description(s);
  return r;
}

UsageRecord mount_record(const Mount& mt) {
  UsageRecord r;
  r.kind = RecordKind::CacheMount;
  r.id = mt.rel;
  r.size = mt.size;
  r.in_use = mt.in_use;
  r.created = mt.created;
  r.last_used = mt.last_used;
  r.description = "cache mount (RUN --mount=type=cache)";
  return r;
}

UsageRecord blob_record(const Model& m, const std::string& d, const Blob& b) {
  UsageRecord r;
  r.kind = RecordKind::Blob;
  r.id = d;
  r.size = b.size;
  r.in_use = b.leased || m.fresh(b.written_ns);
  r.created = b.mtime;
  r.last_used = b.mtime;
  r.description = "unreferenced content blob";
  return r;
}

// The exported blob of each snapshot is counted once, with the first snapshot (by id)
// that names it, and not at all when an image holds it.
std::map<std::string, int64_t> blob_owners(const Model& m) {
  std::map<std::string, int64_t> owned;
  std::set<std::string> counted;
  for (const auto& [id, s] : m.snaps) {
    if (s.removed || s.blob.empty()) continue;
    auto it = m.blobs.find(s.blob);
    if (it == m.blobs.end() || it->second.image || it->second.removed) continue;
    if (counted.insert(s.blob).second) owned[id] = it->second.size;
  }
  return owned;
}

void sort_lru(std::vector<UsageRecord>& records) {
  // Least recently used first; among equals the newer first, so that a layer goes
  // before the layers it was built on.
  std::stable_sort(records.begin(), records.end(), [](const UsageRecord& a, const UsageRecord& b) {
    int64_t la = a.last_used ? a.last_used : a.created, lb = b.last_used ? b.last_used : b.created;
    if (la != lb) return la < lb;
    if (a.created != b.created) return a.created > b.created;
    return a.id < b.id;
  });
}

// ---------------------------------------------------------------- pruning

using TargetFn = std::function<std::optional<int64_t>(int64_t total)>;

struct Pruner {
  Store& store;
  Model& m;
  bool all;
  std::optional<int64_t> cutoff_s;  // only items last used before this
  std::vector<std::string> trash;   // directories to delete after the transaction
  PruneReport report;
  int64_t total = 0;

  bool old_enough(int64_t t) const { return !cutoff_s || t < *cutoff_s; }
  bool snap_protected(const Snap& s) const { return m.snap_in_use(s) || (!all && s.image_used); }

  std::string trash_path(const std::string& dir) {
    return dir + "/trash-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
  }

  // A layer means something only on top of its parent (repair drops a snapshot whose
  // parent is gone), so a snapshot goes only with all the snapshots above it: it is
  // kept while one of them is kept, and counts as used when one of them was used.
  std::map<std::string, std::pair<int64_t, bool>> above_memo;  // id -> (last use, kept)
  std::pair<int64_t, bool> above(const Snap& s, int depth = 0) {
    if (auto it = above_memo.find(s.id); it != above_memo.end()) return it->second;
    std::pair<int64_t, bool> r{s.last_used, snap_protected(s)};
    for (const auto& c : s.children) {
      const Snap& child = m.snaps.at(c);
      if (child.removed || depth > 4096) continue;
      auto [used, kept] = above(child, depth + 1);
      r.first = std::max(r.first, used);
      r.second = r.second || kept;
    }
    return above_memo[s.id] = r;
  }
  bool has_children(const Snap& s) const {
    for (const auto& c : s.children)
      if (!m.snaps.at(c).removed) return true;
    return false;
  }

  void remove_entry(size_t idx, const std::string& because) {
    Entry& e = m.entries[idx];
    if (e.removed) return;
    e.removed = true;
    store.db().exec("DELETE FROM cache_index WHERE key=?1", {e.key});
    std::set<std::string> once;
    for (const auto& l : e.layers) {
      auto it = m.snaps.find(l);
      if (it == m.snaps.end() || !once.insert(l).second) continue;
      Snap& s = it->second;
      --s.refs;
      // A layer nothing names any more is garbage, unless a lease or image keeps it
      // or a layer on top of it still needs it.
      if (s.refs == 0 && !s.removed && l != because && !snap_protected(s) && !has_children(s)) remove_snapshot(s);
    }
  }

  void remove_snapshot(Snap& s) {
    if (s.removed || s.removing || above(s).second) return;
    UsageRecord rec = snap_record(m, s, 0);
    rec.last_used = s.last_used;
    // Its record goes first: the report lists a layer before the parents it frees.
    size_t slot = report.removed.size();
    report.removed.emplace_back();
    s.removing = true;
    for (const auto& c : s.children) remove_snapshot(m.snaps.at(c));  // the layers above first
    for (size_t idx : s.entries) remove_entry(idx, s.id);
    s.removed = true;
    store.db().exec("DELETE FROM snapshots WHERE id=?1", {s.id});
    store.db().exec("DELETE FROM lease_resources WHERE kind='snapshot' AND ref=?1", {s.id});
    // Renamed inside the transaction (as Snapshots::remove does): a concurrent repair
    // never sees the directory without its row. A crash leaves trash-<pid>-* for repair.
    std::string base = store.snapshots().base_dir();
    std::string to = trash_path(base);
    if (::rename((base + "/" + s.id).c_str(), to.c_str()) == 0) {
      trash.push_back(to);
    } else if (errno != ENOENT) {
      throw base::SysError(errno, "rename", base + "/" + s.id);
    }
    total -= s.size;
    rec.size = s.size;
    if (auto it = m.blobs.find(s.blob); !s.blob.empty() && it != m.blobs.end() && !it->second.removed) {
      Blob& b = it->second;
      --b.snap_refs;
      if (!m.blob_kept(b)) rec.size += remove_blob(it->first, b);
    }
    report.removed[slot] = std::move(rec);
  }

  int64_t remove_blob(const std::string& digest, Blob& b) {
    b.removed = true;
    std::string path = store.blobs().path(base::Digest::parse(digest));
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) throw base::SysError(errno, "unlink", path);
    total -= b.size;
    return b.size;
  }

  bool remove_mount(Mount& mt) {
    base::Fd lock = try_lock_mount(mt.dir);
    if (!lock.valid()) return false;  // a build uses it now
    // Only data/ goes: the lock file stays, so a build waiting on it and the next
    // one agree on which lock guards the directory. The next user starts it afresh.
    std::string to = store.scratch_dir() + "/gc-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
    if (::rename((mt.dir + "/data").c_str(), to.c_str()) < 0) {
      if (errno == ENOENT) return false;
      throw base::SysError(errno, "rename", mt.dir + "/data");
    }
    trash.push_back(to);
    store.db().exec("DELETE FROM cache_mount_sizes WHERE path=?1", {mt.rel});
    total -= mt.size;
    report.removed.push_back(mount_record(mt));
    mt.size = 0;
    return true;
  }

  void run(const TargetFn& target) {
    total = m.total();
    report.total_before = total;
    std::optional<int64_t> goal = target(total);
    auto done = [&] { return goal && total <= *goal; };

    // Entries naming a missing snapshot are broken whatever the options (repair drops
    // them too); they hold nothing.
    for (size_t i = 0; i < m.entries.size(); ++i)
      if (m.entries[i].broken) remove_entry(i, "");

    std::vector<UsageRecord> order;
    std::map<std::string, size_t> mount_of;
    for (const auto& [id, s] : m.snaps) {
      auto [used, kept] = above(s);
      if (kept || !old_enough(used)) continue;
      order.push_back(snap_record(m, s, 0));
      order.back().last_used = used;
    }
    for (size_t i = 0; i < m.mounts.size(); ++i) {
      const Mount& mt = m.mounts[i];
      if (mt.in_use || !old_enough(mt.last_used)) continue;
      order.push_back(mount_record(mt));
      mount_of[mt.rel] = i;
    }
    for (const auto& [d, b] : m.blobs) {
      if (m.blob_kept(b) || !old_enough(b.mtime)) continue;
      order.push_back(blob_record(m, d, b));
    }
    // Least recently used first; among equals the later commit first, so a layer goes
    // before the layers it was built on.
    auto key = [&](const UsageRecord& r) {
      int64_t used = r.last_used ? r.last_used : r.created;
      int64_t made = r.kind == RecordKind::Snapshot ? m.snaps.at(r.id).committed_ns : r.created * 1000000000;
      return std::make_tuple(used, -made, r.id);
    };
    std::sort(order.begin(), order.end(),
              [&](const UsageRecord& a, const UsageRecord& b) { return key(a) < key(b); });
    for (const auto& c : order) {
      if (done()) break;
      switch (c.kind) {
        case RecordKind::Snapshot: {
          Snap& s = m.snaps.at(c.id);
          if (!s.removed) remove_snapshot(s);
          break;
        }
        case RecordKind::CacheMount:
          remove_mount(m.mounts[mount_of.at(c.id)]);
          break;
        case RecordKind::Blob: {
          Blob& b = m.blobs.at(c.id);
          if (b.removed || m.blob_kept(b)) break;
          UsageRecord rec = blob_record(m, c.id, b);
          remove_blob(c.id, b);
          report.removed.push_back(std::move(rec));
          break;
        }
      }
    }
    // Removing everything that qualifies: entries that hold no layer go too.
    if (!goal) {
      for (size_t i = 0; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        if (!e.removed && e.layers.empty() && old_enough(e.last_used)) remove_entry(i, "");
      }
    }
    report.total_after = total;
    for (const auto& r : report.removed) report.reclaimed += r.size;
  }
};

void empty_trash(const std::vector<std::string>& trash) {
  for (const auto& t : trash) {
    try {
      base::remove_all(t);
    } catch (const std::exception& e) {
      base::log_warn(std::string("gc: cannot remove `") + t + "`: " + e.what());
    }
  }
}

PruneReport prune_with(Store& store, const ImageRefsFn& images, bool all, std::optional<int64_t> until_ns,
                       const TargetFn& target) {
  ensure_tables(store.db());
  // Walking cache mounts can take long: done before the transaction, which only
  // re-checks their locks.
  std::vector<Mount> mounts = scan_mounts(store);
  std::optional<int64_t> cutoff;
  if (until_ns) cutoff = now_s() - *until_ns / 1000000000;
  std::vector<std::string> trash;
  PruneReport report;
  try {
    store.db().transaction([&] {
      Model m = load_model(store, images, mounts);
      Pruner p{store, m, all, cutoff, {}, {}, 0, {}};
      try {
        p.run(target);
      } catch (...) {
        trash = std::move(p.trash);
        throw;
      }
      trash = std::move(p.trash);
      report = std::move(p.report);
    });
  } catch (base::Error& e) {
    // Renamed directories whose rows came back with the rollback are removed by the
    // next open's repair (a row without its directory is dropped).
    empty_trash(trash);
    throw e.add_context("while pruning the build cache");
  }
  empty_trash(trash);
  return report;
}

}  // namespace

// ---------------------------------------------------------------- leases

Lease::Lease(Store& store) : store_(store), id_(base::random_hex(8)) {
  ensure_tables(store_.db());
  store_.db().transaction([&] {
    remove_dead_leases_in(store_);
    store_.db().exec("INSERT INTO leases(id, pid, created) VALUES(?1, ?2, ?3)",
                     {id_, static_cast<long long>(::getpid()), static_cast<long long>(now_ns())});
  });
}

Lease::~Lease() {
  try {
    store_.db().transaction([&] {
      store_.db().exec("DELETE FROM lease_resources WHERE lease=?1", {id_});
      store_.db().exec("DELETE FROM leases WHERE id=?1", {id_});
    });
  } catch (const std::exception& e) {
    base::log_warn(std::string("gc: releasing lease: ") + e.what());
  }
}

bool Lease::add_snapshots(const std::vector<std::string>& ids) {
  bool ok = true;
  store_.db().transaction([&] {
    for (const auto& id : ids) {
      if (store_.db().query("SELECT 1 FROM snapshots WHERE id=?1", {id}).empty()) {
        ok = false;
        return;
      }
    }
    for (const auto& id : ids)
      store_.db().exec("INSERT OR IGNORE INTO lease_resources(lease, kind, ref) VALUES(?1, 'snapshot', ?2)",
                       {id_, id});
  });
  return ok;
}

void Lease::add_blobs(const std::vector<std::string>& digests) {
  store_.db().transaction([&] {
    for (const auto& d : digests)
      store_.db().exec("INSERT OR IGNORE INTO lease_resources(lease, kind, ref) VALUES(?1, 'blob', ?2)", {id_, d});
  });
}

bool Lease::add_present_blobs(const std::vector<base::Digest>& digests) {
  bool ok = true;
  store_.db().transaction([&] {
    for (const auto& d : digests)
      if (!store_.blobs().has(d)) {
        ok = false;
        return;
      }
    for (const auto& d : digests)
      store_.db().exec("INSERT OR IGNORE INTO lease_resources(lease, kind, ref) VALUES(?1, 'blob', ?2)",
                       {id_, d.str()});
  });
  return ok;
}

int remove_dead_leases(Store& store) {
  ensure_tables(store.db());
  int n = 0;
  store.db().transaction([&] { n = remove_dead_leases_in(store); });
  return n;
}

void note_cache_mount_use(int lock_fd) {
  // Best effort: a missed stamp only makes GC think the mount older than it is.
  if (::futimens(lock_fd, nullptr) < 0) base::log_debug("gc: cannot stamp a cache mount lock");
}

// ---------------------------------------------------------------- usage

Usage disk_usage(Store& store, const ImageRefsFn& images) {
  ensure_tables(store.db());
  std::vector<Mount> mounts = scan_mounts(store);
  Usage u;
  store.db().transaction([&] {
    Model m = load_model(store, images, mounts);
    auto owned = blob_owners(m);
    for (const auto& [id, s] : m.snaps) {
      auto it = owned.find(id);
      u.records.push_back(snap_record(m, s, it == owned.end() ? 0 : it->second));
    }
    for (const auto& mt : m.mounts) u.records.push_back(mount_record(mt));
    for (const auto& [d, b] : m.blobs)
      if (!b.image && b.snap_refs == 0) u.records.push_back(blob_record(m, d, b));
  });
  sort_lru(u.records);
  for (const auto& r : u.records) {
    u.total += r.size;
    (r.shared ? u.shared : u.private_bytes) += r.size;
    if (!r.in_use) u.reclaimable += r.size;
  }
  return u;
}

PruneReport prune(Store& store, const ImageRefsFn& images, const PruneOptions& opts) {
  auto target = opts.target_bytes;
  return prune_with(store, images, opts.all, opts.until_ns, [target](int64_t) { return target; });
}

PruneReport run_gc(Store& store, const ImageRefsFn& images, const GcPolicy& policy, std::optional<GcStats> stats) {
  PruneReport all;
  if (!policy.enabled) return all;
  GcStats st = stats ? *stats : fs_stats(store.root());
  const int64_t reserved = policy.reserved.resolve(st.fs_total);
  const int64_t max_used = policy.max_used.resolve(st.fs_total);
  const int64_t min_free = policy.min_free.resolve(st.fs_total);
  auto merge = [&all](PruneReport r, bool first) {
    if (first) all.total_before = r.total_before;
    all.total_after = r.total_after;
    all.reclaimed += r.reclaimed;
    for (auto& rec : r.removed) all.removed.push_back(std::move(rec));
  };
  bool first = true;
  if (policy.keep_duration_ns > 0) {
    // Old items go, but the cache never shrinks below reservedSpace for age alone.
    std::optional<int64_t> floor = reserved > 0 ? std::optional<int64_t>(reserved) : std::nullopt;
    merge(prune_with(store, images, true, policy.keep_duration_ns, [floor](int64_t) { return floor; }), first);
    first = false;
  }
  if (max_used > 0 || min_free > 0) {
    // Free space grew by what the first pass removed (on this file system).
    const int64_t fs_free = st.fs_free + all.reclaimed;
    auto target = [&](int64_t total) -> std::optional<int64_t> {
      int64_t keep = max_used;
      int64_t excess = min_free - fs_free;
      if (min_free > 0 && excess > 0) {
        keep = keep > 0 ? std::min(keep, total - excess) : total - excess;
      } else if (keep == 0) {
        keep = total;  // only minFreeSpace set, and there is enough free space
      }
      return std::max<int64_t>({keep, reserved, 0});
    };
    merge(prune_with(store, images, true, std::nullopt, target), first);
  }
  return all;
}

}  // namespace builder::cache
