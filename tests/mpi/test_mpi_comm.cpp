// GoogleTest under a real mpiexec: the MPI back-end of Comm and the master/worker loops over it.
// Every rank runs every test; a failure on any rank makes that rank exit non-zero, which fails
// the mpiexec command and therefore the ctest entry.
#include <gtest/gtest.h>
#include <mpi.h>
#include <sys/resource.h>

#include <set>
#include <thread>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/spec/job.hpp"

using namespace hpsweep;

namespace {
const std::string kJob = R"([sweep]
name = mpi
[scales]
params = 1e6, 1e7, 1e8
tokens = 1e8, 1e9
[grid]
lr = log:1e-4:1e-1:10
batch = 16, 64, 256
[backend]
kind = surrogate
)";

struct CollectingSink : ResultSink {
  std::vector<TrialRecord> results;
  void on_dispatch(const Trial&, int) override {}
  void on_result(TrialRecord r) override { results.push_back(std::move(r)); }
  void on_idle() override {}
};

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
}  // namespace

TEST(MpiComm, EveryWorkerReachesTheMasterAndBack) {
  MpiComm comm;
  ASSERT_GE(comm.size(), 2);
  if (comm.rank() == 0) {
    std::set<int> seen;
    Message m;
    while (seen.size() < static_cast<std::size_t>(comm.size() - 1)) {
      ASSERT_TRUE(comm.receive(m, std::chrono::milliseconds(10000)));
      EXPECT_EQ(m.tag, 42);
      EXPECT_EQ(m.payload, "hello from " + std::to_string(m.source));
      seen.insert(m.source);
      comm.send(m.source, 43, std::string(100000, 'x'));  // large: rendezvous protocol, not eager
    }
  } else {
    comm.send(0, 42, "hello from " + std::to_string(comm.rank()));
    Message m;
    ASSERT_TRUE(comm.receive(m, std::chrono::milliseconds(10000)));
    EXPECT_EQ(m.tag, 43);
    EXPECT_EQ(m.payload.size(), 100000u);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(MpiComm, WaitingForAMessageDoesNotSpinACore) {
  MpiComm comm;
  Message m;
  const double cpu0 = process_cpu_seconds();
  EXPECT_FALSE(comm.receive(m, std::chrono::milliseconds(400)));
  const double used = process_cpu_seconds() - cpu0;
  EXPECT_LT(used, 0.1) << "rank " << comm.rank() << " used " << used << " s of CPU while idle for 0.4 s";
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(MpiScheduler, EveryTrialRunsExactlyOnceAcrossRealRanks) {
  MpiComm comm;
  auto make = [](const std::string& path, const std::string& text, const std::string&) {
    return make_backend(parse_job(text, path));
  };
  if (comm.rank() == 0) {
    const auto grid = expand_grid(parse_job(kJob, "mpi.ini"));
    const auto workers = start_workers(comm, "mpi.ini", kJob, "", [](const std::string& w) { ADD_FAILURE() << w; });
    EXPECT_EQ(workers.size(), static_cast<std::size_t>(comm.size() - 1));
    CollectingSink sink;
    run_master(comm, workers, grid, sink, MasterOptions{});
    stop_workers(comm, protocol::Tag::Stop);
    ASSERT_EQ(sink.results.size(), grid.size());
    std::set<TrialId> ids;
    std::set<int> ranks;
    for (const auto& r : sink.results) {
      EXPECT_TRUE(ids.insert(r.trial.id).second);
      ranks.insert(r.rank);
      EXPECT_FALSE(r.host.empty());
    }
    EXPECT_EQ(ranks.size(), workers.size());
  } else {
    run_worker(comm, comm.processor_name(), make);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  MpiEnvironment env(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // One rank speaks for the job; the others report only failures.
  if (rank != 0)
    delete ::testing::UnitTest::GetInstance()->listeners().Release(
        ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
  return RUN_ALL_TESTS();
}
