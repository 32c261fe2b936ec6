#include "hpsweep/run/run.hpp"

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/planner/adaptive_tasks.hpp"
#include "hpsweep/reports/progress.hpp"
#include "hpsweep/reports/status.hpp"
#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/scheduler/worker_pool.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/stop_signals.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

volatile std::sig_atomic_t g_signals = 0;
// How long workers get to end their trials and leave once told to stop (a cancelled command
// trial gets SIGTERM, then SIGKILL a few seconds later).
constexpr std::chrono::milliseconds kDepartureTimeout{15000};
void on_signal(int) {
  g_signals = g_signals + 1;
  note_stop_signal();  // worker threads of this process (--workers) share the counter
}

// Signals go to the master only; workers are told to stop by the master, never by a signal race.
// The allocation's end time (unix seconds) from squeue, for --drain-before-limit.
double slurm_job_end_time() {
  const char* id = std::getenv("SLURM_JOB_ID");
  if (!id)
    throw InputError(
        "--drain-before-limit needs a Slurm allocation (SLURM_JOB_ID is not set); run under sbatch or salloc, or drop "
        "the option");
  const std::string cmd = std::string("squeue -h -j ") + std::to_string(std::atoll(id)) + " -o %e 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw Error("cannot run squeue to read the time limit of Slurm job " + std::string(id));
  char buf[128] = {0};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  pclose(p);
  std::tm tm{};
  if (!got || !strptime(trim(buf).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;  // no limit (UNLIMITED)
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm));  // squeue prints local time
}

void install_master_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaction(s, &sa, nullptr);
}
void ignore_worker_signals() {
  // The master decides when workers stop; Slurm's SIGKILL after KillWait still ends them. The
  // signals are counted, not ignored, so a trial killed by the same preemption is recorded LOST.
  count_stop_signals();
}

class StoreSink : public ResultSink {
 public:
  StoreSink(SweepStore& store, Progress& progress) : store_(store), progress_(progress) {}
  void on_dispatch(const Trial& t, int rank) override { store_.record_dispatch(t.id, rank); }
  void on_result(TrialRecord r) override {
    progress_.on_result(r);
    store_.record_result(std::move(r));
  }
  void on_idle() override {
    store_.checkpoint();
    progress_.maybe_print();
  }

 private:
  SweepStore& store_;
  Progress& progress_;
};

LaunchRecord describe_launch(const RunOptions& o, int ranks, const std::vector<WorkerInfo>& workers) {
  LaunchRecord l;
  l.start_time = unix_now();
  l.ranks = ranks;
  std::set<std::string> hosts{host_name()};
  for (const auto& w : workers) hosts.insert(w.host);
  for (const auto& h : hosts) l.hosts += (l.hosts.empty() ? "" : ",") + h;
  if (const char* id = std::getenv("SLURM_JOB_ID")) l.slurm_job_id = id;
  if (const char* rc = std::getenv("SLURM_RESTART_COUNT")) l.slurm_restart_count = std::atoi(rc);
  l.command = o.command_line;
  return l;
}

// CPU seconds used by the calling thread: the master's own cost, without worker threads.
double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

void print_summary(const SweepStore& store, const Progress& progress, std::size_t ran, double master_cpu) {
  const double t = progress.elapsed_s();
  std::printf("\nran %zu trials in %s (%s trials/s); %zu diverged, %zu failed; master CPU %.2fs (%.1f%% of one core)\n",
              ran, format_duration(t).c_str(), format_short(t > 0 ? static_cast<double>(ran) / t : 0).c_str(),
              progress.diverged(), progress.failed(), master_cpu, t > 0 ? 100.0 * master_cpu / t : 0.0);
  std::printf("%s", format_status(summarize(store.log()), 3, 24).c_str());
}

// The master's part, shared by the MPI and the single-process paths.
int run_master_side(Comm& comm, const RunOptions& o) {
  // On any error run_with_workers tells the workers to leave (Tag::Abort).
  const JobSpec job = load_valid_job(o.job_path);
  const std::vector<Trial> grid = expand_grid(job);
  install_master_signals();
  auto warn = [](const std::string& m) { std::fprintf(stderr, "hpsweep: warning: %s\n", m.c_str()); };
  const auto workers = start_workers(comm, job.path, job.text, o.out_path + ".trials", warn);

  StoreOptions so;
  so.extend = o.extend;
  so.retry_failed = o.retry_failed;
  so.fold_interval_s = o.fold_interval_s;
  const double slurm_end = o.drain_before_limit_s > 0 ? slurm_job_end_time() : 0;
  std::function<TaskDemand(const Trial&)> demand;
  if (job.resources.given()) {
    demand = [&job](const Trial& t) {
      const TrialResources r = job.resources_for(t.point.params, t.point.tokens);
      return TaskDemand{r.gpus, r.cpus, r.nodes};
    };
    // Before the sweep file is touched: every trial must fit on these workers.
    std::map<std::tuple<int, int, int>, const Trial*> kinds;
    for (const auto& t : grid) {
      const TaskDemand d = demand(t);
      kinds.emplace(std::tuple{d.gpus, d.cpus, d.nodes}, &t);
    }
    for (const auto& [kind, t] : kinds) check_placeable(workers, demand(*t), "trial " + hex64(t->id));
  }
  std::optional<SweepStore> store;
  // Ranks = processes: one when the workers are threads of this process.
  const int ranks = launched_by_mpi() ? comm.size() : 1;
  store.emplace(SweepStore::open_for_run(o.out_path, job, grid, so, describe_launch(o, ranks, workers)));
  for (const auto& n : store->notes()) std::printf("hpsweep: %s\n", n.c_str());
  const auto& todo = store->to_run();
  std::printf("hpsweep: sweep '%s': %zu trials in the grid, %zu to run on %zu worker%s -> %s\n", job.name.c_str(),
              grid.size(), todo.size(), workers.size(), workers.size() == 1 ? "" : "s", o.out_path.c_str());
  std::fflush(stdout);

  Progress progress(grid.size(), grid.size() - todo.size(), stdout,
                    Progress::mode_from(o.progress, stdout, launched_by_mpi()));
  StoreSink sink(*store, progress);
  // Draining: the first signal (or the approaching Slurm time limit) stops dispatching; trials in
  // flight may finish within the grace period; a second signal or the deadline ends the wait.
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> drain_started;
  auto draining = [&] {
    if (g_signals == 0 && !(slurm_end > 0 && unix_now() > slurm_end - o.drain_before_limit_s)) return false;
    if (!drain_started) {
      drain_started = Clock::now();
      std::printf("\nhpsweep: %s: no new trials; waiting up to %s for %s in flight\n",
                  g_signals ? "signal received" : "Slurm time limit approaching", format_duration(o.grace_s).c_str(),
                  "the trials");
      std::fflush(stdout);
    }
    return true;
  };
  MasterOptions mo;
  mo.prefetch = o.prefetch;
  mo.should_stop = draining;
  mo.abandon_in_flight = [&] {
    return draining() && (g_signals > 1 || Clock::now() - *drain_started > std::chrono::duration<double>(o.grace_s));
  };
  const std::size_t before = store->log().results.size();
  const double cpu_before = thread_cpu_seconds();
  if (demand) {
    std::size_t gpus = 0;
    for (const auto& w : workers) gpus += w.slots.devices.size();
    std::printf("hpsweep: [resources]: %zu GPUs on %zu worker node%s; trials packed largest first\n", gpus,
                workers.size(), workers.size() == 1 ? "" : "s");
    std::fflush(stdout);
  }
  if (job.adaptive.enabled) {
    // [adaptive]: the planner picks the grid points to run from what is stored (planner/).
    Planner planner(job, grid);
    for (const auto& [id, record] : store->log().latest_by_id()) planner.add_result(*record);
    AdaptiveTasks tasks(planner, sink);
    run_tasks(comm, workers, tasks, mo);
    tasks.stop_planning();  // the planner is read below
    std::printf(
        "\nhpsweep: adaptive plan: %zu rounds, %zu trials, %s%% of the grid's compute, %.3fs planning (on its own "
        "thread; %zu cell fits, %zu reused)%s%s\n",
        planner.rounds().size(), planner.planned().size(),
        format_short(100 * planner.planned_compute() / planner.grid_compute()).c_str(), planner.planning_seconds(),
        planner.cell_fits(), planner.cell_fits_reused(), planner.finished() ? "; finished: " : "",
        planner.finish_reason().c_str());
  } else {
    run_master(comm, workers, todo, sink, mo, demand);
  }
  const bool interrupted = drain_started.has_value();
  // Interrupted: ABORT ends the trials still running (they are recorded LOST below), so the
  // whole job ends now and a requeue can follow; otherwise STOP after the last result.
  stop_workers(comm, interrupted ? protocol::Tag::Abort : protocol::Tag::Stop);
  const int stragglers = await_departures(comm, kDepartureTimeout);
  if (interrupted) {
    const std::size_t lost =
        store->record_in_flight_lost("still running when the launch was stopped (grace period over)");
    if (lost) std::printf("hpsweep: %zu trials still running were recorded LOST; they run again on resume\n", lost);
  }
  store->finish(interrupted ? "interrupted" : "completed");
  progress.finish();
  print_summary(*store, progress, store->log().results.size() - before, thread_cpu_seconds() - cpu_before);
  const int code = interrupted ? kExitInterrupted : kExitOk;
  if (interrupted) std::printf("hpsweep: interrupted; rerun the same command to resume\n");
  if (stragglers > 0 && launched_by_mpi()) {
    // A worker whose trial would not end keeps MPI from shutting down: end the job here, with
    // everything recorded, rather than hang until the scheduler's hard kill.
    std::printf("hpsweep: %d worker%s did not stop within %lld s; ending the MPI job\n", stragglers,
                stragglers == 1 ? "" : "s", static_cast<long long>(kDepartureTimeout.count() / 1000));
    std::fflush(stdout);
    store.reset();
    MpiEnvironment::abort(code);
  }
  return code;
}

std::unique_ptr<Backend> backend_from_text(const std::string& path, const std::string& text,
                                           const std::string& trial_root) {
  return make_backend(parse_job(text, path), trial_root);
}

}  // namespace

int run_sweep(const RunOptions& o, int& argc, char**& argv) {
  WorkerPoolOptions pool;
  pool.local_workers = o.local_workers;
  pool.prepare_worker_process = ignore_worker_signals;
  return run_with_workers(
      argc, argv, pool, [&o](Comm& comm) { return run_master_side(comm, o); },
      [&o](Comm& comm, const std::string& host) {
        run_worker(comm, host, backend_from_text, detect_node_slots(o.gpus_per_node));
      });
}

}  // namespace hpsweep
