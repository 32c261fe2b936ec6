// [resources]: the job-file rules, the master's packing of trials onto the workers' GPUs (real
// master and worker loops over an in-process world), the what-if simulation of the same packing,
// and what a command trial sees of its devices.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/command.hpp"
#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/scheduler/simulated_comm.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {

std::string job_with_resources(const std::string& resources) {
  return "[sweep]\nname = gpus\n[scales]\nparams = 1e8, 1e9, 5e9\ntokens = 1e9\n[grid]\nlr = 1e-3, 2e-3\n"
         "batch = 16\n[backend]\nkind = surrogate\n[resources]\n" +
         resources;
}

std::string error_of(const std::string& text) {
  try {
    parse_job(text, "gpus.ini");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Resources, ARuleOverNGivesEachTrialItsGpusAndAPlainNumberGivesAllTheSame) {
  const JobSpec job = parse_job(job_with_resources("gpus = 1 if params < 3e8, 8 if params < 3e9, 16 otherwise\n"
                                                   "cpus = 4\n"),
                                "gpus.ini");
  EXPECT_TRUE(job.resources.given());
  EXPECT_EQ(job.resources_for(1e8, 1e9).gpus, 1);
  EXPECT_EQ(job.resources_for(1e9, 1e9).gpus, 8);
  EXPECT_EQ(job.resources_for(5e9, 1e9).gpus, 16);
  EXPECT_EQ(job.resources_for(5e9, 1e9).cpus, 4);
  EXPECT_EQ(job.resources_for(5e9, 1e9).nodes, 0);
  EXPECT_EQ(parse_resource_rule("2 if tokens >= 1e9, 1", "x").value_for(1e8, 1e9), 2);
  EXPECT_EQ(parse_resource_rule("2 if tokens >= 1e9, 1", "x").value_for(1e8, 1e8), 1);
}

TEST(Resources, ResourcesAreNotPartOfTheTrialIds) {
  const auto plain = expand_grid(parse_job(job_with_resources(""), "gpus.ini"));
  const auto with = expand_grid(parse_job(job_with_resources("gpus = 8\n"), "gpus.ini"));
  ASSERT_EQ(plain.size(), with.size());
  for (std::size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(plain[i].id, with[i].id);
}

TEST(Resources, BadRulesAreRefusedWithFileLineAndWhatToWrite) {
  const std::string no_match = error_of(job_with_resources("gpus = 1 if params < 3e8, 8 if params < 3e9\n"));
  EXPECT_NE(no_match.find("gpus.ini:12: [resources] gpus"), std::string::npos) << no_match;
  EXPECT_NE(no_match.find("otherwise"), std::string::npos) << no_match;
  const std::string variable = error_of(job_with_resources("gpus = 1 if layers < 3, 8 otherwise\n"));
  EXPECT_NE(variable.find("unknown variable 'layers'"), std::string::npos) << variable;
  const std::string order = error_of(job_with_resources("gpus = 8 otherwise, 1 if params < 3e8\n"));
  EXPECT_NE(order.find("put it last"), std::string::npos) << order;
  const std::string op = error_of(job_with_resources("gpus = 1 if params = 3e8, 8 otherwise\n"));
  EXPECT_NE(op.find("unknown comparison '='"), std::string::npos) << op;
  const std::string fraction = error_of(job_with_resources("gpus = 1.5\n"));
  EXPECT_NE(fraction.find("whole number"), std::string::npos) << fraction;
  const std::string uneven = error_of(job_with_resources("gpus = 12\nnodes = 1 if params < 3e9, 5 otherwise\n"));
  EXPECT_NE(uneven.find("splits evenly"), std::string::npos) << uneven;
  const std::string key = error_of(job_with_resources("gpu = 1\n"));
  EXPECT_NE(key.find("did you mean 'gpus'"), std::string::npos) << key;
}

namespace {

// Holds its devices for a while and records when, so tests can check no GPU was ever shared.
struct DeviceUse {
  TrialId id;
  int rank;
  std::vector<std::string> hosts, devices;
  double start, end;
};
struct UseLog {
  std::mutex mutex;
  std::vector<DeviceUse> uses;
};
class HoldingBackend : public Backend {
 public:
  HoldingBackend(UseLog& log, int rank) : log_(log), rank_(rank) {}
  TrialOutcome run(const Trial& t) override { return run_placed(t, Placement{}); }
  TrialOutcome run_placed(const Trial& t, const Placement& p) override {
    const double start = unix_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + static_cast<int>(t.id % 3) * 10));
    {
      std::lock_guard lock(log_.mutex);
      log_.uses.push_back(DeviceUse{t.id, rank_, p.hosts, p.devices, start, unix_now()});
    }
    TrialOutcome o;
    o.final_loss = o.smooth_loss = 1.0;
    return o;
  }

 private:
  UseLog& log_;
  int rank_;
};

struct Sink : ResultSink {
  std::vector<TrialRecord> results;
  void on_dispatch(const Trial&, int) override {}
  void on_result(TrialRecord r) override { results.push_back(std::move(r)); }
  void on_idle() override {}
};

// Master and `workers` worker threads, each offering `gpus` devices.
Sink run_packed(int workers, int gpus, const std::vector<Trial>& trials,
                const std::function<TaskDemand(const Trial&)>& demand, UseLog& log) {
  LocalWorld world(workers + 1);
  std::vector<std::thread> threads;
  protocol::WorkerSlots slots;
  for (int g = 0; g < gpus; ++g) slots.devices.push_back(std::to_string(g));
  slots.cpus = 64;
  for (int r = 1; r <= workers; ++r)
    threads.emplace_back([&, r] {
      run_worker(
          world.endpoint(r), "node-" + std::to_string(r),
          [&log, r](const std::string&, const std::string&, const std::string&) {
            return std::make_unique<HoldingBackend>(log, r);
          },
          slots);
    });
  Sink sink;
  const auto started = start_workers(world.endpoint(0), "gpus.ini", "", "", [](const std::string&) {});
  try {
    run_master(world.endpoint(0), started, trials, sink, MasterOptions{}, demand);
  } catch (...) {
    stop_workers(world.endpoint(0), protocol::Tag::Abort);
    for (auto& t : threads) t.join();
    throw;
  }
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  for (auto& t : threads) t.join();
  return sink;
}

std::vector<Trial> numbered_trials(int n) {
  std::vector<Trial> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    out[static_cast<std::size_t>(i)].id = static_cast<TrialId>(1000 + i);
    out[static_cast<std::size_t>(i)].point.params = 1e6 * (i % 5 + 1);
  }
  return out;
}

// GPUs by id: 8 for every 7th trial, 2 for every 3rd, else 1.
TaskDemand mixed_demand(const Trial& t) {
  const int i = static_cast<int>(t.id - 1000);
  return TaskDemand{i % 7 == 0 ? 8 : i % 3 == 0 ? 2 : 1, 0, 0};
}

}  // namespace

TEST(GpuPacking, MixedTrialsRunSideBySideAndNoDeviceIsEverShared) {
  const auto trials = numbered_trials(40);
  UseLog log;
  const Sink sink = run_packed(2, 8, trials, mixed_demand, log);
  ASSERT_EQ(sink.results.size(), trials.size());
  std::set<TrialId> ids;
  for (const auto& r : sink.results) {
    EXPECT_TRUE(ids.insert(r.trial.id).second) << "ran twice: " << r.trial.id;
    EXPECT_EQ(static_cast<int>(std::count(r.devices.begin(), r.devices.end(), ',')) + 1, mixed_demand(r.trial).gpus)
        << r.devices;
  }
  ASSERT_EQ(log.uses.size(), trials.size());
  bool concurrent = false;
  for (std::size_t a = 0; a < log.uses.size(); ++a)
    for (std::size_t b = a + 1; b < log.uses.size(); ++b) {
      const DeviceUse &x = log.uses[a], &y = log.uses[b];
      const bool overlap = x.start < y.end && y.start < x.end;
      if (!overlap || x.rank != y.rank) continue;
      concurrent = true;
      for (const auto& d : x.devices)
        EXPECT_EQ(std::count(y.devices.begin(), y.devices.end(), d), 0)
            << "device " << d << " of rank " << x.rank << " shared by trials " << x.id << " and " << y.id;
    }
  EXPECT_TRUE(concurrent) << "no two trials ever ran at once on one worker";
}

TEST(GpuPacking, AMultiNodeTrialOwnsWholeNodesAndHearsAllItsHosts) {
  const auto trials = numbered_trials(12);
  // Trial 1000 needs 16 GPUs: both 8-GPU nodes, and nothing else may run on them meanwhile.
  auto demand = [](const Trial& t) { return TaskDemand{t.id == 1000 ? 16 : 1, 0, 0}; };
  UseLog log;
  const Sink sink = run_packed(2, 8, trials, demand, log);
  ASSERT_EQ(sink.results.size(), trials.size());
  const auto big = std::find_if(log.uses.begin(), log.uses.end(), [](auto& u) { return u.id == 1000; });
  ASSERT_NE(big, log.uses.end());
  EXPECT_EQ(big->hosts, (std::vector<std::string>{"node-1", "node-2"}));
  EXPECT_EQ(big->devices.size(), 8u);
  for (const auto& u : log.uses)
    EXPECT_TRUE(u.id == 1000 || !(u.start < big->end && big->start < u.end)) << "trial " << u.id << " overlapped";
  const auto record =
      std::find_if(sink.results.begin(), sink.results.end(), [](auto& r) { return r.trial.id == 1000; });
  ASSERT_NE(record, sink.results.end());
  EXPECT_EQ(record->devices, "node-1:0,1,2,3,4,5,6,7 node-2:0,1,2,3,4,5,6,7");
}

TEST(GpuPacking, ATrialNoNodeCanHoldIsRefusedBeforeAnythingRuns) {
  const auto trials = numbered_trials(3);
  UseLog log;
  try {
    run_packed(
        1, 4, trials,
        [](const Trial&) {
          return TaskDemand{6, 0, 0};
        },
        log);
    FAIL() << "a 6-GPU trial on one 4-GPU node was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--gpus-per-node"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(log.uses.empty());
}

TEST(GpuPacking, SimulatedPackingPutsTheLargestFirstAndReachesTheIdealMakespan) {
  // Two 8-GPU trials of 10 s and sixteen 1-GPU trials of 5 s on two 8-GPU nodes: the large ones
  // first on both nodes (0-10 s), then the small ones fill all 16 GPUs (10-15 s) = 240 GPU-s / 16.
  std::vector<Trial> trials = numbered_trials(18);
  auto demand = [](const Trial& t) { return TaskDemand{t.id >= 1016 ? 8 : 1, 0, 0}; };
  protocol::WorkerSlots slots;
  for (int g = 0; g < 8; ++g) slots.devices.push_back(std::to_string(g));
  slots.cpus = 64;
  SimulatedWorkers sim(
      3, [](const Trial& t) { return t.id >= 1016 ? 10.0 : 5.0; }, slots);
  const auto workers = start_workers(sim, "", "", "", [](const std::string&) {});
  Sink sink;
  run_master(sim, workers, trials, sink, MasterOptions{}, demand);
  EXPECT_DOUBLE_EQ(sim.now(), 15.0);
  EXPECT_DOUBLE_EQ(sim.device_seconds(), 240.0);
  ASSERT_EQ(sink.results.size(), 18u);
  for (const auto& r : sink.results) EXPECT_DOUBLE_EQ(r.start_time, r.trial.id >= 1016 ? 0.0 : 10.0) << r.trial.id;
}

class CommandPlacement : public TempDirTest {};

TEST_F(CommandPlacement, TheProgramSeesOnlyItsDevicesAndThePlacementPlaceholders) {
  write_bytes(path("trial.sh"),
              "echo \"$CUDA_VISIBLE_DEVICES|$ROCR_VISIBLE_DEVICES|$HIP_VISIBLE_DEVICES|$HPSWEEP_NNODES|$1\" "
              "> \"$HPSWEEP_TRIAL_DIR/seen\"\necho '{\"loss\": 2.5}'\n");
  CommandSettings s;
  s.argv = {"/bin/sh", path("trial.sh"), "{hosts}/{master_addr}/{nnodes}/{gpus}/{gpus_per_node}/{devices}"};
  s.trial_root = path("trials");
  CommandBackend backend(s, 0);
  Trial t;
  t.id = 0xabc;
  t.point.params = 1e6;
  t.point.tokens = 1e8;
  t.point.lr = 1e-3;
  t.point.batch = 8;
  t.point.seq_len = 128;
  Placement p;
  p.devices = {"3", "5"};
  p.hosts = {"gpu-a", "gpu-b"};
  p.gpus = 4;
  const TrialOutcome out = backend.run_placed(t, p);
  EXPECT_EQ(out.state, TrialState::Done) << out.error;
  EXPECT_EQ(read_bytes(path("trials/") + hex64(t.id) + "/seen"), "3,5|3,5|3,5|2|gpu-a,gpu-b/gpu-a/2/4/2/3,5\n");
}
