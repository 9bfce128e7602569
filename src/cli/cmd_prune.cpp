// cli/cmd_prune.cpp — `builder du` (buildx du's table or --verbose blocks, then the
// Shared / Private / Reclaimable / Total lines), `builder prune` (docker builder
// prune's flags and confirmation) and the GC that runs after every build.
#include "cmd_prune.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/time.h"
#include "cli.h"
#include "image/store.h"

namespace builder::cli {
namespace {

std::string size_text(int64_t bytes) { return base::human_size(static_cast<unsigned long long>(std::max<int64_t>(bytes, 0))); }

std::string ago(int64_t t) {
  if (t <= 0) return "";
  return base::human_duration(std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr)) - t)) + " ago";
}

std::string kind_text(cache::RecordKind k) {
  switch (k) {
    case cache::RecordKind::Snapshot: return "layer";
    case cache::RecordKind::CacheMount: return "exec.cachemount";
    case cache::RecordKind::Blob: return "content";
  }
  return "";
}

std::vector<std::string> table_row(const cache::UsageRecord& r) {
  // As buildx: an ID marked * is in use.
  return {r.id + (r.in_use ? "*" : ""), r.in_use ? "false" : "true", size_text(r.size), ago(r.last_used)};
}

void print_records_table(const std::vector<cache::UsageRecord>& records) {
  std::vector<std::vector<std::string>> rows{{"ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"}};
  for (const auto& r : records) rows.push_back(table_row(r));
  print_table(rows);
}

void print_verbose(const cache::UsageRecord& r) {
  std::vector<std::vector<std::string>> rows{{"ID:", r.id}};
  if (!r.parent.empty()) rows.push_back({"Parent:", r.parent});
  rows.push_back({"Created at:", r.created > 0 ? base::rfc3339(static_cast<std::time_t>(r.created)) : ""});
  rows.push_back({"Type:", kind_text(r.kind)});
  rows.push_back({"In use:", r.in_use ? "true" : "false"});
  rows.push_back({"Reclaimable:", r.in_use ? "false" : "true"});
  rows.push_back({"Shared:", r.shared ? "true" : "false"});
  rows.push_back({"Size:", size_text(r.size)});
  rows.push_back({"Description:", r.description});
  if (r.kind == cache::RecordKind::Snapshot) rows.push_back({"Usage count:", std::to_string(r.usage_count)});
  rows.push_back({"Last used:", ago(r.last_used)});
  for (const auto& row : rows) std::printf("%-15s%s\n", row[0].c_str(), row[1].c_str());
  std::printf("\n");
}

int cmd_du(const std::string& root, bool verbose) {
  cache::Store store(root);
  auto usage = cache::disk_usage(store, [&store] { return image_refs(store); });
  if (verbose) {
    for (const auto& r : usage.records) print_verbose(r);
  } else if (!usage.records.empty()) {
    print_records_table(usage.records);
    std::printf("\n");
  }
  print_table({{"Shared:", size_text(usage.shared)},
               {"Private:", size_text(usage.private_bytes)},
               {"Reclaimable:", size_text(usage.reclaimable)},
               {"Total:", size_text(usage.total)}});
  std::fflush(stdout);
  return 0;
}

struct PruneFlags {
  bool all = false;
  bool force = false;
  std::vector<std::string> filters;
  std::string keep_storage;
};

cache::PruneOptions prune_options(const PruneFlags& f) {
  cache::PruneOptions o;
  o.all = f.all;
  for (const auto& filter : f.filters) {
    auto eq = filter.find('=');
    if (eq == std::string::npos) throw base::Error("invalid filter `" + filter + "`: expected KEY=VALUE (e.g. until=24h)");
    std::string key = filter.substr(0, eq), value = filter.substr(eq + 1);
    // buildx also spells it unused-for; both keep what was used within the duration.
    if (key != "until" && key != "unused-for")
      throw base::Error("unsupported filter `" + key + "`: only until=DURATION is supported");
    if (o.until_ns) throw base::Error("the until filter is given more than once");
    int64_t ns = cache::parse_duration(value);
    if (ns < 0) throw base::Error("invalid filter `" + filter + "`: the duration must not be negative");
    o.until_ns = ns;
  }
  if (!f.keep_storage.empty()) {
    int64_t bytes;
    try {
      bytes = cache::parse_size(f.keep_storage);
    } catch (base::Error& e) {
      throw base::Error("--keep-storage: " + e.message());
    }
    if (bytes > 0) o.target_bytes = bytes;
  }
  return o;
}

/// Docker's prompt on a terminal; refuses without one.
bool confirm(bool all) {
  if (!::isatty(STDIN_FILENO))
    throw base::Error("prune needs confirmation, and stdin is not a terminal: use -f/--force");
  std::printf("WARNING! This will remove all %sbuild cache. Are you sure you want to continue? [y/N] ",
              all ? "" : "dangling ");
  std::fflush(stdout);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = base::to_lower(base::trim(answer));
  return answer == "y" || answer == "yes";
}

int cmd_prune(const std::string& root, const PruneFlags& f) {
  cache::PruneOptions o = prune_options(f);  // bad flags fail before the question
  if (!f.force && !confirm(f.all)) return 0;
  cache::Store store(root);
  auto report = cache::prune(store, [&store] { return image_refs(store); }, o);
  if (!report.removed.empty()) print_records_table(report.removed);
  std::printf("Total:  %s\n", size_text(report.reclaimed).c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

cache::ImageRefs image_refs(cache::Store& store) {
  image::ImageStore images(store);
  cache::ImageRefs refs;
  // Untagged (dangling) images are images too: kept until `builder image prune` or rmi.
  for (const auto& rec : images.list_all()) {
    refs.blobs.insert(rec.manifest_digest.str());
    for (const auto& index : images.indexes_of(rec.manifest_digest)) refs.blobs.insert(index.str());
    try {
      image::Image img = images.load(rec.manifest_digest);
      refs.blobs.insert(img.config_digest.str());
      std::vector<std::string> chain;
      for (const auto& l : img.layers) {
        refs.blobs.insert(l.digest.str());
        chain.push_back(l.digest.str());
      }
      refs.chains.push_back(std::move(chain));
    } catch (const base::Error&) {
      // Unloadable (a config missing, a bad field): keep every digest the manifest names.
      try {
        auto m = base::Json::parse(store.blobs().read(rec.manifest_digest));
        if (m.contains("config") && m["config"].contains("digest"))
          refs.blobs.insert(m["config"]["digest"].get<std::string>());
        if (m.contains("layers"))
          for (const auto& l : m["layers"])
            if (l.contains("digest")) refs.blobs.insert(l["digest"].get<std::string>());
      } catch (const std::exception&) {
        // nothing more can be named
      }
    }
  }
  return refs;
}

GcAfterBuild::GcAfterBuild(cache::Store& store, bool verbose, std::function<bool()> skip)
    : store_(store), policy_(cache::load_policy(store.root())), verbose_(verbose), skip_(std::move(skip)) {}

GcAfterBuild::~GcAfterBuild() {
  if (!policy_.enabled || (skip_ && skip_())) return;
  try {
    auto report = cache::run_gc(store_, [this] { return image_refs(store_); }, policy_);
    if (verbose_ && !report.removed.empty()) {
      std::fprintf(stderr, "GC: removed %zu build cache records, reclaimed %s (build cache %s -> %s)\n",
                   report.removed.size(), size_text(report.reclaimed).c_str(), size_text(report.total_before).c_str(),
                   size_text(report.total_after).c_str());
      for (const auto& r : report.removed)
        std::fprintf(stderr, "GC: removed %s %s (%s)\n", kind_text(r.kind).c_str(), r.id.c_str(),
                     size_text(r.size).c_str());
      std::fflush(stderr);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "WARNING: build cache GC failed: %s\n", e.what());
    std::fflush(stderr);
  }
}

void add_prune_commands(CLI::App& app, Context& ctx) {
  auto verbose = std::make_shared<bool>(false);
  auto* du = app.add_subcommand("du", "Show build cache disk usage");
  du->add_flag("-v,--verbose", *verbose, "Show every record in detail");
  du->callback([&ctx, verbose] {
    ctx.action = [&ctx, verbose] { return cmd_du(ctx.root, *verbose); };
  });

  auto f = std::make_shared<PruneFlags>();
  auto* prune = app.add_subcommand("prune", "Remove build cache");
  prune->add_flag("-a,--all", f->all, "Remove all build cache, not only what no tagged image uses");
  prune->add_flag("-f,--force", f->force, "Do not prompt for confirmation");
  prune->add_option("--filter", f->filters, "Filter: until=DURATION (keep what was used within it)")
      ->allow_extra_args(false);
  prune->add_option("--keep-storage", f->keep_storage, "Amount of disk space to keep for cache (e.g. 10GB)");
  prune->callback([&ctx, f] {
    ctx.action = [&ctx, f] { return cmd_prune(ctx.root, *f); };
  });
}

}  // namespace builder::cli
