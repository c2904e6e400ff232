"""``describe --play``: speech through this machine's speaker as each part of a description is said.

The sound goes to a player program that reads raw mono 16-bit PCM on its standard input
(``play_command``; by default the first of PipeWire's ``pw-cat``, PulseAudio's ``paplay`` and
ALSA's ``aplay``), so that a kiosk needs no audio library in Python. A machine with no player
or no sound device gets one line that says so, before anything is described.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import time

import numpy as np

from describe_local.errors import ConfigError, OutputError

PLAYERS = (  # {rate}: the sample rate; each reads raw mono signed 16-bit little-endian PCM on stdin
    "pw-cat --playback --format s16 --channels 1 --rate {rate} -",
    "paplay --raw --format=s16le --channels=1 --rate={rate}",
    "aplay -q -t raw -f S16_LE -c 1 -r {rate}",
)
SETUP_HINT = ("install one (apt-get install alsa-utils, or pulseaudio-utils), or name yours in the "
              "play_command setting (DESCRIBE_LOCAL_PLAY_COMMAND, with {rate} for the sample rate)")


def player_command(setting: str) -> str:
    """The command to play with: ``setting``, else the first player installed (:class:`ConfigError` if none)."""
    for command in ([setting] if setting else PLAYERS):
        if shutil.which(shlex.split(command)[0]):
            return command
    if setting:
        raise ConfigError(f"--play: the player {shlex.split(setting)[0]!r} of play_command is not installed")
    raise ConfigError(f"--play needs a program that plays sound and none was found; {SETUP_HINT}")


class Player:
    """One player process per sample rate, fed PCM as it comes; :meth:`close` waits until it is all heard."""

    def __init__(self, command: str) -> None:
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._rate = 0

    def play(self, pcm: np.ndarray, rate: int) -> None:
        """Queue mono int16 ``pcm`` at ``rate`` Hz (:class:`OutputError` when the sound cannot play)."""
        if self._process is not None and rate != self._rate:
            self.close()
        if self._process is None:
            argv = [part.replace("{rate}", str(rate)) for part in shlex.split(self.command)]
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)
            self._rate = rate
            time.sleep(0.05)  # a player with no sound device gives up at once: say so, not "broken pipe"
            self._check()
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
            self._process.stdin.flush()
        except BrokenPipeError:
            self._check(ended=True)

    def close(self) -> None:
        """Wait for the sound queued so far to be played."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        process.wait()
        self._check(process, ended=True)

    def _check(self, process: subprocess.Popen[bytes] | None = None, *, ended: bool = False) -> None:
        process = process or self._process
        if process is None or (process.poll() is None and not ended):
            return
        status = process.wait()
        if status == 0:
            return
        said = (process.stderr.read().decode("utf-8", "replace").strip().splitlines() or [""])[-1] \
            if process.stderr else ""
        self._process = None
        raise OutputError(f"cannot play sound on this machine ({shlex.split(self.command)[0]} exited with "
                          f"status {status}{': ' + said if said else ''}); is there a sound device? "
                          "Without --play the MP3s are written to out/")
