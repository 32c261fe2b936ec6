#pragma once
// Termination signals that reached a worker process. Workers do not act on them (the master
// decides when they stop), but a trial that dies of a signal while its worker is being stopped
// too (Slurm signals every process of a step on preemption) was lost, not failed: backends ask
// here to tell the two apart.
#include <cstdint>

namespace hpsweep {

// Installs handlers for SIGINT, SIGTERM, SIGUSR1 and SIGHUP that only count the signal.
void count_stop_signals();
// Counts one signal; for a process whose own handler acts on the signal (the master).
void note_stop_signal();
// How many such signals this process has received so far (async-signal-safe counter).
std::uint64_t stop_signals_seen();

}  // namespace hpsweep
