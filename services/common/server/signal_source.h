// Where "please stop" comes from. RunServer reads shutdown requests from a
// SignalSource on a dedicated thread: the first one starts a graceful drain,
// a second one exits at once. Production uses PosixSignalSource (SIGTERM,
// SIGINT); tests use ManualSignalSource and raise "signals" by hand.
//
//   ManualSignalSource signals;
//   RunEnvironment env;
//   env.signals = &signals;
//   std::thread t([&] { status = RunServer(options, services, hooks, env); });
//   signals.Raise(SIGTERM);  // drain and return OK
#ifndef TIERMESH_SERVICES_COMMON_SERVER_SIGNAL_SOURCE_H_
#define TIERMESH_SERVICES_COMMON_SERVER_SIGNAL_SOURCE_H_

#include <csignal>
#include <deque>
#include <initializer_list>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tiermesh::server {

class SignalSource {
 public:
  virtual ~SignalSource() = default;
  // Blocks until the next signal and returns its number; returns 0 once
  // Close() has been called (then always 0).
  virtual int Next() = 0;
  // Wakes Next() for good. Thread-safe; may be called more than once.
  virtual void Close() = 0;
};

// Delivers real signals through a self-pipe: the handler only write(2)s the
// signal number to a pipe (async-signal-safe whatever thread the kernel picks),
// and Next() reads it on an ordinary thread. No thread's signal mask has to be
// set up before other threads start. The previous handlers come back when the
// source is destroyed. Only one PosixSignalSource may exist at a time (a
// signal handler cannot be told which object to use).
class PosixSignalSource final : public SignalSource {
 public:
  // FAILED_PRECONDITION when another PosixSignalSource exists; INTERNAL when
  // the pipe or the handlers cannot be set up.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PosixSignalSource>> Create(
      std::initializer_list<int> signals = {SIGTERM, SIGINT});

  ~PosixSignalSource() override;
  PosixSignalSource(const PosixSignalSource&) = delete;
  PosixSignalSource& operator=(const PosixSignalSource&) = delete;

  int Next() override;
  void Close() override;

 private:
  struct Installed {
    int signal;
    struct sigaction previous;
  };
  PosixSignalSource(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  const int read_fd_;
  const int write_fd_;
  std::vector<Installed> installed_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Signals raised by hand, for tests (and for embedding a server in a process
// that has its own notion of "stop").
class ManualSignalSource final : public SignalSource {
 public:
  void Raise(int signal);
  int Next() override;
  void Close() override;

 private:
  absl::Mutex mu_;
  std::deque<int> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_SIGNAL_SOURCE_H_
