#include "hpsweep/util/stop_signals.hpp"

#include <atomic>
#include <csignal>

namespace hpsweep {

namespace {
std::atomic<std::uint64_t> g_stop_signals{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the counter is updated from a signal handler");
void on_stop_signal(int) { note_stop_signal(); }
}  // namespace

void note_stop_signal() { g_stop_signals.fetch_add(1, std::memory_order_relaxed); }

void count_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaction(s, &sa, nullptr);
}

std::uint64_t stop_signals_seen() { return g_stop_signals.load(std::memory_order_relaxed); }

}  // namespace hpsweep
