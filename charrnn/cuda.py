"""What a run does differently on a CUDA GPU: its own stream, the capture gate, and CUDA graphs.

Why. The chapter's run is tiny (a minibatch of 32 x 35 characters, h = 256, V = 1027): on a GPU a training
step is hundreds of small kernels, and its speed is set by kernel launches and Python, not by arithmetic.
So on CUDA a trainer

* never waits for the GPU inside an epoch: the epoch's minibatches go to the GPU in one copy that does not
  wait (``send_batches``), and losses and norms stay there until one read at the epoch's end;
* queues its work on a CUDA stream of its own (``new_stream``, ``on_stream``): runs trained by several
  threads at once neither wait for each other's kernels nor mix their work. A thread that copies a run's
  weights orders its copy after the run's queued steps, and the run's next step after the copy
  (``reading``); when a run ends its stream is synchronised (``settle``), so its model can then be used
  on any stream;
* with ``TrainConfig.fast`` (opt-in) records one whole training step once as a CUDA graph and replays it
  for every minibatch: one launch instead of hundreds (``GraphStep``).

A graph's maths. A replay reruns the recorded kernels on the very memory they used when recorded. So
everything that changes between minibatches lives in static buffers the replay reads (the inputs X, the
targets T, the state fed in) and is copied in before each replay; the step's [loss, gradient norm] is a
static output, copied out after it; the gradients live in the graph's own memory pool. The optimizer's
state must exist before the capture (``WARMUP_STEPS`` eager steps first, as torch's recipe says: lazy
initialisation happens outside the graph), and Adam keeps its step count on the GPU (``capturable``).
A replay is the same operations on the same numbers as the eager step it recorded.

The gate. While a graph is captured, no other thread may queue CUDA work (``CudaGate``, one ``GATE`` per
process). On the CPU none of this runs: ``new_stream`` gives None, and every helper given None does nothing
but what the CPU needs.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterable, Iterator

import torch

State = tuple[torch.Tensor, ...]
Step = Callable[[torch.Tensor, torch.Tensor, State], tuple[torch.Tensor, torch.Tensor, State]]
WARMUP_STEPS = 3  # eager steps before a capture (torch's recipe: lazy initialisation happens outside the graph)


# ---------------------------------------------------------------- the gate a capture passes
class CudaGate:
    """Who may queue CUDA work while a CUDA graph is captured: nobody else.

    Any number of threads queue their runs' work at once (``shared``: a training step, a snapshot, a sample),
    but a capture (``exclusive``, one at a time in the process) waits until every shared section has ended and
    holds new ones back until it is done. Seen on an H200 (torch 2.11, cuDNN 9.19) with a capture merely
    ``thread_local``: another thread's cuDNN RNN backward failed with CUDNN_STATUS_INTERNAL_ERROR, and a
    snapshot that ordered the capturing stream after its copy failed with cudaErrorStreamCaptureIsolation.
    A capture happens once per fast run; the other runs pause for as long as recording one training step takes.

    A thread's shared sections nest (``Trainer.fork`` copies inside its twin's section); a thread that captures
    must not be inside one (it would wait for itself), and may open shared sections while it captures. On the
    CPU no trainer uses it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = 0             # shared sections open, counted once per thread
        self._owner: int | None = None  # the thread capturing
        self._mine = threading.local()  # .depth: this thread's nested shared sections

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        counted = depth == 0 and self._owner != threading.get_ident()  # only this thread sets itself as owner
        if counted:
            with self._cond:
                while self._owner is not None:
                    self._cond.wait()
                self._open += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if counted:
                with self._cond:
                    self._open -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._mine, "depth", 0):
            raise RuntimeError("CudaGate.exclusive inside one of this thread's shared sections would wait forever")
        me = threading.get_ident()
        with self._cond:
            while self._owner is not None:
                self._cond.wait()
            self._owner = me  # from here no new shared section opens
            while self._open:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                self._cond.notify_all()


GATE = CudaGate()  # one per process: a capture must be alone among all runs' CUDA work


# ---------------------------------------------------------------- a run's stream
def new_stream(device: torch.device) -> torch.cuda.Stream | None:
    """A run's own CUDA stream (from torch's pool of 32 per device; a 33rd run shares one, in order);
    None on the CPU."""
    return torch.cuda.Stream(device) if device.type == "cuda" else None


@contextlib.contextmanager
def on_stream(stream: torch.cuda.Stream | None) -> Iterator[None]:
    """The run's stream as the calling thread's current stream, inside a shared section of the gate;
    nothing on the CPU (``stream`` None).

    Entered around each piece of work and never held across a ``yield``: a trainer's ``work`` generator may
    be resumed from another thread, and the current stream belongs to a thread."""
    if stream is None:
        yield
        return
    with GATE.shared(), torch.cuda.stream(stream):
        yield


@contextlib.contextmanager
def reading(stream: torch.cuda.Stream | None, lock: threading.Lock, device: torch.device) -> Iterator[None]:
    """Held while another thread (or stream) copies a run's weights: ``lock`` (the run's), so no optimizer
    step is queued meanwhile; on CUDA also the reading stream ordered after every step queued so far, and
    the run's stream ordered after the reader's copies, so the next step cannot overwrite what is being
    copied. Neither the GPU nor the training thread waits for the copy: only the lock is held, for a few
    launches. On CUDA it is a shared section of the gate, entered before the lock (the order everywhere)."""
    if stream is None:
        with lock:
            yield
        return
    with GATE.shared(), lock:
        reader = torch.cuda.current_stream(device)
        reader.wait_stream(stream)
        try:
            yield
        finally:
            stream.wait_stream(reader)


def settle(stream: torch.cuda.Stream | None) -> None:
    """Wait for the run's queued GPU work (when it ends: whoever uses the model next, on any stream, sees
    its final weights). Nothing to do on the CPU."""
    if stream is not None:
        with GATE.shared():
            stream.synchronize()


def send_batches(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
                 stream: torch.cuda.Stream) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """An epoch's minibatches (X, Y), cut on the CPU, sent to the GPU in one copy that does not wait.

    Indexing the GPU's corpus with the CPU's shuffled indices would copy them, and wait for the GPU, every
    minibatch; stacked and pinned they are one asynchronous copy on the run's stream."""
    host = torch.stack([torch.stack(xy) for xy in pairs])  # (batches, 2, batch, steps)
    with on_stream(stream):
        on_gpu = host.pin_memory().to(device, non_blocking=True)
    return [(xy[0], xy[1]) for xy in on_gpu.unbind(0)]


# ---------------------------------------------------------------- the training step as a CUDA graph
class GraphStep:
    """One whole training step captured as a CUDA graph, then replayed for every minibatch.

    ``step(X, T, state) -> (loss, gradient norm before clipping, final state)`` is the trainer's training
    step (forward, loss, backward, clipping, optimizer step) on X (batch, steps), the targets T
    (steps * batch,) time-major, and the state fed in. Its static buffers hold what changes between replays:
    X, T and the state (carried between replays for consecutive sampling, ``carry``; zeros for random
    sampling), and ``stats``, the step's [loss, gradient norm]. Made by ``capture``.
    """

    def __init__(self, step: Step, X: torch.Tensor, Y: torch.Tensor, state: State,
                 stream: torch.cuda.Stream, carry: bool):
        self.step, self.carry = step, carry
        self.X = X.clone()                                    # (batch, steps)
        self.T = Y.T.reshape(-1).clone()                      # (steps * batch,)
        self.state = tuple(s.detach().clone() for s in state)
        self._capture(stream)

    def _capture(self, stream: torch.cuda.Stream) -> None:
        """Record ``_body`` into ``self.graph`` (nothing runs yet); ``self.stats`` is its static output."""
        self.graph = torch.cuda.CUDAGraph()
        # made inside GATE.exclusive() (capture): no other thread queues CUDA work meanwhile
        with torch.cuda.graph(self.graph, stream=stream, capture_error_mode="thread_local"):
            self.stats = self._body()

    def _body(self) -> torch.Tensor:
        """The training step the graph holds; returns [loss, gradient norm before clipping], shape (2,)."""
        loss, norm, out = self.step(self.X, self.T, self.state)
        if self.carry:  # the next replay starts from this one's final state (detached: the graph is cut)
            for s, o in zip(self.state, out):
                s.copy_(o.detach())
        return torch.stack([loss, norm])

    def replay(self, X: torch.Tensor, Y: torch.Tensor, first: bool) -> torch.Tensor:
        """Train on one minibatch; ``first``: the epoch's first (consecutive sampling starts from zeros).
        Returns a copy of [loss, norm] (the static output is overwritten by the next replay)."""
        self.X.copy_(X)
        self.T.view(Y.shape[1], Y.shape[0]).copy_(Y.T)
        if first and self.carry:
            for s in self.state:
                s.zero_()
        self.graph.replay()
        return self.stats.clone()


def capture(step: Step, X: torch.Tensor, Y: torch.Tensor, start: Callable[[], State],
            stream: torch.cuda.Stream, carry: bool) -> tuple[GraphStep | None, str | None]:
    """Capture ``step`` (see ``GraphStep``) from this minibatch and the state ``start()`` makes, alone on the
    GPU and on the run's stream: (the graph, None), or (None, why) when the capture fails, and the run then
    goes on eagerly. Called in the run's thread, outside any of its shared sections."""
    with GATE.exclusive(), torch.cuda.stream(stream):
        state = start()
        try:
            return GraphStep(step, X, Y, state, stream, carry), None
        except Exception as e:  # noqa: BLE001 (any failure to capture: an operation a graph cannot hold in
            # some torch or cuDNN version, say; the run goes on without graphs and graph_error says why)
            return None, f"{type(e).__name__}: {e}"
