"""Export a streaming keyword detector (features + model + state step) to one TorchScript file.

    python -m kws.export [CHECKPOINT] [--int8] [--out logs/kws/detector.ts]

CHECKPOINT defaults to the distilled student (logs/kws_distill/student/best.pt); --int8 exports
the weight-only int8 version (weights rounded as `kws.quantize.pack_int8` stores them; the file
holds them dequantized, in float32). `kws/stream_standalone.py` streams a wav through the file
with nothing but torch.

Why TorchScript and not torch.export: a streaming step has data-dependent control flow (how many
feature frames and conv frames a chunk completes, the start-of-stream reflection, buffers whose
length varies from call to call) and state kept between calls (sample and feature buffers, the
GRU state, the attention window). torch.export traces one fixed graph: it would need the state
passed in and out as fixed-shape tensors, fixed-size chunks and `torch.cond` for every branch.
TorchScript compiles the Python control flow as it is and keeps the state in module attributes,
so the exported file is the same algorithm as `kws.stream.StreamingDetector`. (torch 2.14 marks
torch.jit.script / torch.jit.load deprecated in favour of torch.export, but both work and
`torch.jit.load` needs only torch; a fixed-chunk, explicit-state torch.export version is the way
forward when TorchScript goes.)

The scripted detector recomputes the windowed attention (softmax over at most W energies, O(W H)
per conv frame) instead of `SlidingAttention`'s running sums: for W ~ 10 that is a few hundred
operations, and it is exactly `offline_reference`'s computation. It handles GRU and vanilla-RNN
models (an LSTM's (h, c) state would need another attribute).
"""
from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from common.artifacts import KWS_DETECTOR, KWS_STUDENT
from common.checkpoint import CheckpointError
from common.features import Features
from kws.model import CRNN, load_kws_checkpoint
from kws.quantize import pack_int8, unpack_int8


class ScriptableDetector(nn.Module):
    """`push(samples (n,))` -> keyword probabilities `(m,)` of the m conv frames the chunk completes.

    The same numbers as `StreamingDetector` with a window of `window` conv frames: log-mel frames
    from a sample buffer (start reflection as torch.stft(center=True)), one conv frame per `stride`
    feature frames, the RNN state carried, attention over the last `window` RNN outputs.
    """

    def __init__(self, model: CRNN, features: Features, window: int) -> None:
        super().__init__()
        if model.cfg.rnn_type == "lstm":
            raise ValueError("export handles GRU and vanilla RNN models (an LSTM's state is a pair)")
        cfg = features.cfg
        if cfg.kind != "logmel" or cfg.normalize != "none":
            raise ValueError(f"export needs logmel features without normalization, got {cfg.kind!r}/{cfg.normalize!r}")
        model = copy.deepcopy(model).cpu().float().eval()
        self.conv = model.conv
        self.rnn = model.rnn
        self.energy = model.attention.energy
        self.classifier = model.classifier
        self.register_buffer("window_fn", features.window.detach().clone().float())
        self.register_buffer("mel", features.mel.detach().clone().float())  # (freq, n_mels)
        self.sample_rate, self.n_fft, self.hop, self.win_length = cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.win_length
        self.pad, self.log_floor, self.n_mels = cfg.n_fft // 2, float(cfg.log_floor), features.num_features
        self.kernel, self.stride = model.kernel_time, model.stride_time
        self.window, self.layers, self.hidden = window, model.cfg.num_layers, model.cfg.hidden_size
        self.reset()  # the stream state; TorchScript reads the attributes' types from these values

    @torch.jit.export
    def reset(self) -> None:
        """Forget the stream: the next sample starts a new one."""
        self.samples = torch.zeros(0)
        self.started = False
        self.feats = torch.zeros(self.n_mels, 0)
        self.state = torch.zeros(self.layers, 1, self.hidden)
        self.values = torch.zeros(0, self.hidden)
        self.energies = torch.zeros(0)
        self.conv_frames = 0

    @torch.jit.export
    def ready_seconds(self, frame: int) -> float:
        """When conv frame `frame`'s probability can be known: its last sample's time in seconds."""
        last_feature = frame * self.stride + self.kernel - 1
        return max(last_feature * self.hop + self.n_fft - self.pad, self.pad + 1) / self.sample_rate

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:
        return self.push(chunk)

    @torch.jit.export
    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        buffer = torch.cat([self.samples, chunk.reshape(-1).float()])
        if not self.started and buffer.shape[0] > self.pad:
            buffer = torch.cat([buffer[1:self.pad + 1].flip(0), buffer])
            self.started = True
        if self.started and buffer.shape[0] >= self.n_fft:
            n = 1 + (buffer.shape[0] - self.n_fft) // self.hop
            used = (n - 1) * self.hop + self.n_fft
            spec = torch.stft(buffer[None, :used], self.n_fft, self.hop, self.win_length, self.window_fn,
                              center=False, return_complex=True).abs().pow(2)
            logmel = torch.matmul(spec.transpose(1, 2), self.mel).clamp(min=self.log_floor).log()
            self.feats = torch.cat([self.feats, logmel[0].t()], dim=1)
            buffer = buffer[n * self.hop:]
        self.samples = buffer
        probs: list[torch.Tensor] = []
        while self.feats.shape[1] >= self.kernel:
            frame = self.conv(self.feats[None, None, :, :self.kernel]).transpose(1, 2)  # (1, 1, C * F')
            output, self.state = self.rnn(frame, self.state)
            self.values = torch.cat([self.values, output[0]])[-self.window:]
            self.energies = torch.cat([self.energies, self.energy(output[0])[:, 0]])[-self.window:]
            weights = torch.softmax(self.energies, dim=0)
            context = (weights[:, None] * self.values).sum(dim=0)
            probs.append(torch.softmax(self.classifier(context[None]), dim=-1)[0, 1])
            self.feats = self.feats[:, self.stride:]
            self.conv_frames += 1
        if len(probs) == 0:
            return torch.zeros(0)
        return torch.stack(probs)


def export(model: CRNN, features: Features, window: int, out: str | Path) -> Path:
    """Script `ScriptableDetector(model, features, window)` and save it to `out`."""
    with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; see the module docstring
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(ScriptableDetector(model, features, window))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", type=Path, default=Path(KWS_STUDENT))
    parser.add_argument("--int8", action="store_true", help="export the weight-only int8 weights")
    parser.add_argument("--out", type=Path, default=Path(KWS_DETECTOR))
    args = parser.parse_args(argv)
    try:
        ckpt = load_kws_checkpoint(args.checkpoint)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    model = unpack_int8(ckpt.model, pack_int8(ckpt.model)) if args.int8 else ckpt.model
    window = ckpt.clip_window  # the int8 model has the float one's architecture
    out = export(model, ckpt.features, window, args.out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, TorchScript; window {window} conv frames); "
          f"stream a wav with: python kws/stream_standalone.py {out} FILE.wav")
    return 0


if __name__ == "__main__":
    sys.exit(main())
