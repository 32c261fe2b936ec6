#include "hpsweep/scheduler/master.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

[[noreturn]] void throw_unexpected(const Message& msg, const std::string& during) {
  throw CommError("unexpected message tag " + std::to_string(msg.tag) + " from rank " + std::to_string(msg.source) +
                  during);
}

// Trials as tasks: the ResultSink sees Trials and TrialRecords, never payloads.
class TrialTasks : public TaskHandler {
 public:
  TrialTasks(const std::vector<Trial>& trials, ResultSink& sink, std::function<TaskDemand(const Trial&)> demand)
      : trials_(trials), sink_(sink), demand_(std::move(demand)) {}
  std::size_t count() const override { return trials_.size(); }
  TaskDemand demand(std::size_t index) const override { return demand_ ? demand_(trials_[index]) : TaskDemand{}; }
  std::string name(std::size_t index) const override { return "trial " + hex64(trials_[index].id); }
  std::string dispatch(std::size_t index, int rank) override {
    const Trial& t = trials_[index];
    sink_.on_dispatch(t, rank);
    return protocol::encode_trial(t, static_cast<std::int64_t>(trials_.size() - finished_));
  }
  void on_result(int, std::string payload) override {
    // The engine has opened the TaskResult envelope: what is left is the TrialRecord.
    ByteReader r(payload);
    sink_.on_result(decode_trial_record(r));
    ++finished_;
  }
  void on_idle() override { sink_.on_idle(); }

 private:
  const std::vector<Trial>& trials_;
  ResultSink& sink_;
  std::function<TaskDemand(const Trial&)> demand_;
  std::size_t finished_ = 0;
};

// A task's demand made concrete for this set of workers.
struct Shape {
  int nodes = 1;
  int gpus_per_node = 0;
  int cpus_per_node = 0;
  bool operator==(const Shape&) const = default;
  int gpus() const { return nodes * gpus_per_node; }
  // Largest first: more nodes, then more GPUs, then more cores.
  bool operator>(const Shape& o) const {
    if (nodes != o.nodes) return nodes > o.nodes;
    if (gpus_per_node != o.gpus_per_node) return gpus_per_node > o.gpus_per_node;
    return cpus_per_node > o.cpus_per_node;
  }
};

// One worker's node as the packer sees it.
struct Node {
  const WorkerInfo* info = nullptr;
  std::vector<bool> device_used;
  int free_devices = 0, free_cpus = 0, running = 0;
};

struct Running {
  std::size_t index = 0;
  std::vector<std::size_t> nodes;  // into the packer's nodes; the first is the leader
  std::vector<int> devices;        // on each of them (a multi-node task owns its nodes whole)
  int cpus = 0;
  bool whole = false;
};

class Packer {
 public:
  explicit Packer(const std::vector<WorkerInfo>& workers) {
    for (const auto& w : workers) {
      Node n;
      n.info = &w;
      n.device_used.assign(w.slots.devices.size(), false);
      n.free_devices = static_cast<int>(w.slots.devices.size());
      n.free_cpus = std::max(1, w.slots.cpus);
      nodes_.push_back(std::move(n));
    }
  }

  Shape shape_of(const TaskDemand& d, const std::string& name) const {
    int max_gpus = 0, max_cpus = 0;
    for (const auto& n : nodes_) {
      max_gpus = std::max(max_gpus, static_cast<int>(n.device_used.size()));
      max_cpus = std::max(max_cpus, std::max(1, n.info->slots.cpus));
    }
    Shape s;
    s.nodes = d.nodes > 0 ? d.nodes : (d.gpus <= max_gpus || max_gpus == 0 ? 1 : (d.gpus + max_gpus - 1) / max_gpus);
    if (d.gpus % s.nodes != 0)
      throw InputError(name + " needs " + std::to_string(d.gpus) + " GPUs, more than the " + std::to_string(max_gpus) +
                       " of the largest node, and they do not split evenly over " + std::to_string(s.nodes) +
                       " nodes; give [resources] gpus as a multiple of the GPUs per node, or set nodes");
    s.gpus_per_node = d.gpus / s.nodes;
    s.cpus_per_node = d.cpus > 0 ? d.cpus : (d.gpus == 0 ? 1 : 0);
    int fitting = 0;
    for (const auto& n : nodes_)
      if (static_cast<int>(n.device_used.size()) >= s.gpus_per_node &&
          std::max(1, n.info->slots.cpus) >= s.cpus_per_node)
        ++fitting;
    if (fitting < s.nodes)
      throw InputError(name + " needs " + std::to_string(s.nodes) + " node" + (s.nodes == 1 ? "" : "s") + " with " +
                       std::to_string(s.gpus_per_node) + " GPUs" +
                       (s.cpus_per_node > 0 ? " and " + std::to_string(s.cpus_per_node) + " cores" : "") +
                       " each, but " + std::to_string(fitting) + " of the " + std::to_string(nodes_.size()) +
                       " workers have that (the largest has " + std::to_string(max_gpus) + " GPUs and " +
                       std::to_string(max_cpus) +
                       " cores); run on more or larger nodes, set --gpus-per-node, or change [resources]");
    return s;
  }

  // Places a task of this shape on free resources, or returns nullopt.
  std::optional<Running> place(const Shape& s) {
    Running r;
    r.cpus = s.cpus_per_node;
    if (s.nodes == 1) {
      // Best fit: the busiest node that still has room keeps whole nodes free for large tasks.
      std::optional<std::size_t> best;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        if (n.free_devices < s.gpus_per_node || n.free_cpus < s.cpus_per_node) continue;
        if (!best ||
            std::pair(n.free_devices, n.free_cpus) < std::pair(nodes_[*best].free_devices, nodes_[*best].free_cpus))
          best = i;
      }
      if (!best) return std::nullopt;
      Node& n = nodes_[*best];
      for (int d = 0;
           d < static_cast<int>(n.device_used.size()) && static_cast<int>(r.devices.size()) < s.gpus_per_node; ++d)
        if (!n.device_used[static_cast<std::size_t>(d)]) r.devices.push_back(d);
      for (int d : r.devices) n.device_used[static_cast<std::size_t>(d)] = true;
      n.free_devices -= s.gpus_per_node;
      n.free_cpus -= s.cpus_per_node;
      ++n.running;
      r.nodes = {*best};
      return r;
    }
    // Several nodes: idle ones, taken whole (the job step owns them).
    for (std::size_t i = 0; i < nodes_.size() && static_cast<int>(r.nodes.size()) < s.nodes; ++i) {
      const Node& n = nodes_[i];
      if (n.running == 0 && static_cast<int>(n.device_used.size()) >= s.gpus_per_node &&
          std::max(1, n.info->slots.cpus) >= s.cpus_per_node)
        r.nodes.push_back(i);
    }
    if (static_cast<int>(r.nodes.size()) < s.nodes) return std::nullopt;
    r.whole = true;
    for (int d = 0; d < s.gpus_per_node; ++d) r.devices.push_back(d);
    for (std::size_t i : r.nodes) {
      Node& n = nodes_[i];
      std::fill(n.device_used.begin(), n.device_used.end(), true);
      n.free_devices = 0;
      n.free_cpus = 0;
      ++n.running;
    }
    return r;
  }

  void release(const Running& r) {
    for (std::size_t i : r.nodes) {
      Node& n = nodes_[i];
      --n.running;
      if (r.whole) {
        std::fill(n.device_used.begin(), n.device_used.end(), false);
        n.free_devices = static_cast<int>(n.device_used.size());
        n.free_cpus = std::max(1, n.info->slots.cpus);
      } else {
        for (int d : r.devices) n.device_used[static_cast<std::size_t>(d)] = false;
        n.free_devices += static_cast<int>(r.devices.size());
        n.free_cpus += r.cpus;
      }
    }
  }

  Placement placement(const Running& r, const Shape& s) const {
    Placement p;
    const Node& leader = nodes_[r.nodes.front()];
    for (int d : r.devices) p.devices.push_back(leader.info->slots.devices[static_cast<std::size_t>(d)]);
    for (std::size_t i : r.nodes) p.hosts.push_back(nodes_[i].info->host);
    p.gpus = s.gpus();
    p.cpus = s.cpus_per_node;
    return p;
  }
  int rank_of(const Running& r) const { return nodes_[r.nodes.front()].info->rank; }

 private:
  std::vector<Node> nodes_;
};

}  // namespace

std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_payload,
                                      const std::function<void(const std::string&)>& warn) {
  for (int r = 1; r < comm.size(); ++r) protocol::send(comm, r, protocol::Tag::Job, job_payload);
  std::vector<WorkerInfo> workers;
  int answered = 0;
  Message msg;
  while (answered < comm.size() - 1) {
    if (!comm.receive(msg, std::chrono::milliseconds(60000)))
      throw CommError("workers did not answer within 60 s (" + std::to_string(answered) + " of " +
                      std::to_string(comm.size() - 1) + " did)");
    if (protocol::has_tag(msg, protocol::Tag::Ready)) {
      WorkerInfo w;
      w.rank = msg.source;
      protocol::decode_ready(msg.payload, w.host, w.slots);
      workers.push_back(std::move(w));
      ++answered;
    } else if (protocol::has_tag(msg, protocol::Tag::WorkerError)) {
      warn("rank " + std::to_string(msg.source) + " could not start: " + msg.payload);
      ++answered;
    } else {
      throw_unexpected(msg, " while starting workers");
    }
  }
  if (workers.empty()) throw Error("no worker could start");
  std::sort(workers.begin(), workers.end(), [](auto& a, auto& b) { return a.rank < b.rank; });
  // Two ranks on one host that found the same real GPUs would hand them out twice: the first
  // keeps them. (--gpus-per-node declares devices, e.g. fake ones for tests: taken as given.)
  std::map<std::string, std::map<std::string, int>> gpu_owner;  // host -> device -> rank
  for (auto& w : workers) {
    if (!w.slots.detected) continue;
    auto& owners = gpu_owner[w.host];
    std::vector<std::string> kept;
    for (const auto& d : w.slots.devices) {
      const auto [it, first] = owners.emplace(d, w.rank);
      if (first) {
        kept.push_back(d);
        continue;
      }
      warn("ranks " + std::to_string(it->second) + " and " + std::to_string(w.rank) + " on host " + w.host +
           " both see GPU " + d + "; only rank " + std::to_string(it->second) +
           " places trials on it (start one worker rank per node, e.g. srun --ntasks-per-node=1)");
    }
    w.slots.devices = std::move(kept);
  }
  return workers;
}

std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_path, const std::string& job_text,
                                      const std::string& trial_root,
                                      const std::function<void(const std::string&)>& warn) {
  return start_workers(comm, protocol::encode_job(job_path, job_text, trial_root), warn);
}

namespace {

// The dispatch loop for tasks with [resources]: every task runs as soon as a node (or k idle
// nodes) has its devices free; nothing is queued on a worker. Largest tasks first, so the big
// ones do not wait for the end; smaller ones fill what is left.
void run_packed_tasks(Comm& comm, const std::vector<WorkerInfo>& workers, TaskHandler& handler,
                      const MasterOptions& options) {
  Packer packer(workers);
  const std::size_t total = handler.count();
  std::vector<Shape> shapes(total);
  std::vector<std::size_t> pending(total);
  for (std::size_t i = 0; i < total; ++i) {
    shapes[i] = packer.shape_of(handler.demand(i), handler.name(i));
    pending[i] = i;
  }
  std::stable_sort(pending.begin(), pending.end(), [&](std::size_t a, std::size_t b) { return shapes[a] > shapes[b]; });
  std::map<std::uint64_t, Running> running;
  std::uint64_t next_key = 1;
  auto stopping = [&] { return options.should_stop && options.should_stop(); };
  auto fill = [&] {
    if (stopping()) return;
    std::vector<std::size_t> left;
    std::optional<Shape> did_not_fit;  // pending is sorted by shape: skip the rest of a shape's run
    for (std::size_t index : pending) {
      if (did_not_fit && *did_not_fit == shapes[index]) {
        left.push_back(index);
        continue;
      }
      std::optional<Running> r = packer.place(shapes[index]);
      if (!r) {
        did_not_fit = shapes[index];
        left.push_back(index);
        continue;
      }
      r->index = index;
      const int rank = packer.rank_of(*r);
      const std::string payload = handler.dispatch(index, rank);
      protocol::send(comm, rank, protocol::Tag::PlacedTask,
                     protocol::encode_placed_task(next_key, packer.placement(*r, shapes[index]), payload));
      running.emplace(next_key++, std::move(*r));
    }
    pending = std::move(left);
  };
  fill();
  auto handle = [&](Message& msg) {
    if (!protocol::has_tag(msg, protocol::Tag::PlacedResult)) throw_unexpected(msg, "");
    std::uint64_t key = 0;
    protocol::TaskResult result = protocol::decode_placed_result(msg.payload, key);
    auto it = running.find(key);
    if (it == running.end())
      throw CommError("rank " + std::to_string(msg.source) + " answered task key " + std::to_string(key) +
                      ", which is not running");
    packer.release(it->second);
    running.erase(it);
    fill();  // before recording: the freed devices get their next tasks at once
    handler.on_result(msg.source, std::move(result.payload));
  };
  Message msg;
  while (!running.empty()) {
    if (options.abandon_in_flight && options.abandon_in_flight()) break;
    if (!comm.receive(msg, std::chrono::milliseconds(250))) {
      handler.on_idle();
      continue;
    }
    handle(msg);
    for (int batch = 0; batch < 4096 && comm.try_receive(msg); ++batch) handle(msg);
    handler.on_idle();
  }
}

}  // namespace

void run_tasks(Comm& comm, const std::vector<WorkerInfo>& workers, TaskHandler& handler, const MasterOptions& options) {
  // [resources]: packed dispatch. An adaptive sweep's count() grows as results arrive (below).
  for (std::size_t i = 0; i < handler.count(); ++i)
    if (handler.demand(i).any()) return run_packed_tasks(comm, workers, handler, options);
  std::size_t next = 0;
  std::map<int, int> outstanding;  // per worker rank
  std::size_t in_flight = 0;
  auto stopping = [&] { return options.should_stop && options.should_stop(); };
  auto dispatch = [&](int rank) {
    if (next >= handler.count() || stopping()) return;
    const std::string payload = handler.dispatch(next++, rank);
    protocol::send(comm, rank, protocol::Tag::Task, payload);
    ++outstanding[rank];
    ++in_flight;
  };
  // Round-robin the first tasks so every worker starts with the most expensive ones available.
  for (int depth = 0; depth < std::max(1, options.prefetch); ++depth)
    for (const auto& w : workers) dispatch(w.rank);

  // Very short tasks finish faster than a message round trip with an idle master: queue enough
  // of them per worker to cover ~2 ms of work (kept between `prefetch` and 64).
  double mean_task_s = -1;
  int depth = std::max(1, options.prefetch);
  auto handle = [&](Message& msg) {
    if (!protocol::has_tag(msg, protocol::Tag::Result)) throw_unexpected(msg, "");
    protocol::TaskResult result = protocol::decode_task_result(msg.payload);
    --outstanding[msg.source];
    --in_flight;
    mean_task_s = mean_task_s < 0 ? result.seconds : 0.95 * mean_task_s + 0.05 * result.seconds;
    depth = std::clamp(static_cast<int>(0.002 / std::max(mean_task_s, 1e-7)), std::max(1, options.prefetch), 64);
    // Before recording: the worker gets its next tasks as early as possible.
    while (outstanding[msg.source] < depth && next < handler.count() && !stopping()) dispatch(msg.source);
    handler.on_result(msg.source, std::move(result.payload));
  };

  // Tasks the handler added while recording results go to every worker with room in its queue.
  auto top_up = [&] {
    if (next >= handler.count()) return;
    for (const auto& w : workers)
      while (outstanding[w.rank] < depth && next < handler.count() && !stopping()) dispatch(w.rank);
  };

  // After the grace period the trials still in flight are left to the caller (recorded LOST).
  auto abandoning = [&] { return options.abandon_in_flight && options.abandon_in_flight(); };
  // Tasks may still be added without another result (see TaskHandler::may_add_tasks).
  auto awaiting_tasks = [&] { return next >= handler.count() && !stopping() && handler.may_add_tasks(); };
  Message msg;
  while (in_flight > 0 || awaiting_tasks()) {
    if (abandoning()) break;
    if (in_flight == 0) {
      handler.wait_for_tasks(std::chrono::milliseconds(250));
      handler.on_idle();
      top_up();
      continue;
    }
    // While a task list may grow, poll often: a decided round reaches idle workers within ~2 ms.
    const auto wait = awaiting_tasks() ? std::chrono::milliseconds(2) : std::chrono::milliseconds(250);
    if (!comm.receive(msg, wait)) {
      handler.on_idle();
      top_up();
      continue;
    }
    handle(msg);
    // Drain what else has arrived, then persist the batch in one go.
    for (int batch = 0; batch < 4096 && comm.try_receive(msg); ++batch) handle(msg);
    handler.on_idle();
    top_up();
  }
}

void check_placeable(const std::vector<WorkerInfo>& workers, const TaskDemand& demand, const std::string& task) {
  Packer(workers).shape_of(demand, task);
}

void run_master(Comm& comm, const std::vector<WorkerInfo>& workers, const std::vector<Trial>& trials, ResultSink& sink,
                const MasterOptions& options, const std::function<TaskDemand(const Trial&)>& demand) {
  TrialTasks tasks(trials, sink, demand);
  run_tasks(comm, workers, tasks, options);
}

void stop_workers(Comm& comm, protocol::Tag tag) {
  for (int r = 1; r < comm.size(); ++r) protocol::send(comm, r, tag, "");
}

int await_departures(Comm& comm, std::chrono::milliseconds timeout) {
  std::vector<bool> left(static_cast<std::size_t>(comm.size()), false);
  int remaining = comm.size() - 1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Message msg;
  while (remaining > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (!comm.receive(msg, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now))) continue;
    if (protocol::has_tag(msg, protocol::Tag::Left) && msg.source > 0 && msg.source < comm.size() &&
        !left[static_cast<std::size_t>(msg.source)]) {
      left[static_cast<std::size_t>(msg.source)] = true;
      --remaining;
    }
  }
  return remaining;
}

}  // namespace hpsweep
