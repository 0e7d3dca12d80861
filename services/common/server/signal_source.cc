#include "services/common/server/signal_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tiermesh::server {
namespace {

// The write end of the active PosixSignalSource's pipe, or -1. A signal
// handler can reach no object, so this one process-wide slot is unavoidable;
// it is lock-free and only ever set by PosixSignalSource's factory/destructor.
std::atomic<int> g_signal_pipe_write_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free,
              "the signal handler needs a lock-free fd slot");

extern "C" void WriteSignalToPipe(int signal) {
  const int saved_errno = errno;
  const int fd = g_signal_pipe_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signal);
    // Non-blocking: if the pipe is somehow full, dropping a repeat signal is
    // better than blocking inside a handler.
    ssize_t ignored = write(fd, &byte, 1);
    (void)ignored;
  }
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PosixSignalSource>> PosixSignalSource::Create(
    std::initializer_list<int> signals) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("signal pipe: ", std::strerror(errno)));
  }
  if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("signal pipe: ", std::strerror(err)));
  }
  int expected = -1;
  if (!g_signal_pipe_write_fd.compare_exchange_strong(expected, fds[1])) {
    close(fds[0]);
    close(fds[1]);
    return absl::FailedPreconditionError("another PosixSignalSource is active in this process");
  }
  std::unique_ptr<PosixSignalSource> source(new PosixSignalSource(fds[0], fds[1]));
  for (int signal : signals) {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = WriteSignalToPipe;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    Installed installed{signal, {}};
    if (sigaction(signal, &action, &installed.previous) != 0) {
      const int err = errno;
      return absl::InternalError(
          absl::StrCat("cannot handle signal ", signal, ": ", std::strerror(err)));
    }
    source->installed_.push_back(installed);
  }
  return source;
}

PosixSignalSource::~PosixSignalSource() {
  for (const Installed& installed : installed_) {
    sigaction(installed.signal, &installed.previous, nullptr);
  }
  g_signal_pipe_write_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
}

int PosixSignalSource::Next() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return 0;
  }
  unsigned char byte = 0;
  while (true) {
    const ssize_t n = read(read_fd_, &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return 0;  // the pipe broke: behave as closed rather than spin
  }
  if (byte == 0) {
    // Close() wrote the wake-up byte; put it back for any other reader.
    unsigned char zero = 0;
    ssize_t ignored = write(write_fd_, &zero, 1);
    (void)ignored;
    return 0;
  }
  return byte;
}

void PosixSignalSource::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  // 0 is no signal number: it tells Next() to return.
  unsigned char zero = 0;
  ssize_t ignored = write(write_fd_, &zero, 1);
  (void)ignored;
}

void ManualSignalSource::Raise(int signal) {
  absl::MutexLock lock(&mu_);
  pending_.push_back(signal);
}

int ManualSignalSource::Next() {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !pending_.empty(); };
  mu_.Await(absl::Condition(&ready));
  if (closed_) return 0;
  const int signal = pending_.front();
  pending_.pop_front();
  return signal;
}

void ManualSignalSource::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

}  // namespace tiermesh::server
