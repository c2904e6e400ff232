"""Every error that reaches the user, in one place.

Each error the CLI and the server report to a person derives from
:class:`DescribeLocalError`; its message is one line that says what went wrong
and, where there is one, what to do about it. Each class carries the CLI's
exit code and the web API's HTTP status, so neither front end keeps a table of
its own. Anything else that escapes is a bug.
"""

from __future__ import annotations


def first_line(exc: object) -> str:
    """The first line of an exception's (or any object's) message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DescribeLocalError(Exception):
    """An error with a message meant for the user."""

    exit_code = 1
    http_status = 400
    retry_after: int | None = None  # seconds, for a 503's Retry-After header


# -- what the user gave: settings, options, photos, pages, videos, data sets, output files ----


class ConfigError(DescribeLocalError):
    """A setting has a bad value."""

    exit_code = 2


class OutputError(ConfigError):
    """An output path (``-o``, the ``output_dir`` setting) that cannot be used, or an MP3 that cannot be written."""


class CannotListen(ConfigError):
    """``serve`` cannot listen on the address and port it was given (taken, or not this machine's)."""


class CollectionFileError(OutputError):
    """The JSON-lines output of a collection (``--jsonl``) cannot be written, or holds something else."""


class ImageError(DescribeLocalError):
    """A file is not an image we can describe (not an image, empty, truncated, too big)."""

    exit_code = 3
    http_status = 415


class ImageTooLarge(ImageError):
    """A photo over the limits: too many bytes or pixels, too long and thin, or too much memory to decode."""

    http_status = 413


class PageError(DescribeLocalError):
    """A web page ``alt-text`` cannot read or edit without changing other bytes (its encoding)."""

    http_status = 422


class VideoError(DescribeLocalError):
    """A file that is not a video we can describe: not a video, no picture, damaged or truncated throughout."""

    exit_code = 3
    http_status = 415


class EvalDataError(ConfigError):
    """A set ``eval`` cannot read: not there, or not in a format it knows (the message lists the formats)."""


# -- what is not installed: models, optional packages, tools ----------------------------------


class ModelNotInstalled(DescribeLocalError):
    """A model the user asked for is not in the model store."""

    exit_code = 4


# What to install for the PyTorch side (our OFA engine, conversion to ONNX, transformers models).
TORCH_INSTALL = "pip install 'describe-local[torch]'"


class TorchNotInstalled(ModelNotInstalled):
    """A feature that needs PyTorch (the optional ``torch`` extra) was asked for, and torch is not installed.

    Describing with an OFA model converted to ONNX needs no torch; converting one, an
    OFA model without its ONNX graphs, and a transformers caption model do.
    """

    @classmethod
    def for_(cls, what: str, missing: str | None = None, then: str = "") -> TorchNotInstalled:
        """The error for ``what`` ("converting ofa-tiny to ONNX needs torch"): the module missing, the
        install line, and ``then``, what to do after it."""
        gone = f" ({missing} is not installed)" if missing else ""
        return cls(f"{what}{gone}: install it with `{TORCH_INSTALL}`" + (f", then {then}" if then else ""))


class OcrNotInstalled(ModelNotInstalled):
    """Tesseract or one of its language packs is missing."""


class ModelsMissingOnNodes(ModelNotInstalled):
    """Some machines of a Ray cluster lack models (or gallery people) the run needs; names each and what."""


class RayNotInstalled(DescribeLocalError):
    """``--ray`` was given and Ray is not installed (the ``ray`` extra)."""

    exit_code = 4


class EvalToolMissing(DescribeLocalError):
    """Something ``eval`` needs is not installed: pycocoevalcap or matplotlib (the ``eval`` extra), or Java."""

    exit_code = 4


# -- the model store: importing, pulling, checking --------------------------------------------


class StoreError(DescribeLocalError):
    """The store refused an operation (a bad name, a model already there)."""

    exit_code = 4


class NotAModel(StoreError):
    """A folder or file offered to the store is not a model we can use."""


class ArchiveTooLarge(StoreError):
    """A model archive that would unpack to more than it should or than the disk holds (a bomb)."""


class UnknownModel(StoreError):
    """A model name that no catalogue entry or naming pattern matches."""


class ManifestError(DescribeLocalError):
    """A model folder's manifest is unreadable, or its files do not match it."""


class OfflineError(DescribeLocalError):
    """A download was needed and the network is unreachable."""

    exit_code = 6


class DownloadError(DescribeLocalError):
    """A download failed for a reason other than being offline (HTTP error, bad checksum)."""

    exit_code = 7


# -- while describing: the gallery, helper processes, workers, clusters -----------------------


class GalleryError(DescribeLocalError):
    """The known-faces gallery refused an operation (bad name, no face, several faces)."""

    exit_code = 5
    http_status = 422


class FaceWorkerError(DescribeLocalError):
    """The child process that finds faces stopped or could not start."""


class StageTimedOut(DescribeLocalError):
    """A stage's helper did not answer within the stage's time budget (and was stopped):
    the stage ran out of time on this photo, as when the stage runner stops waiting."""


class WorkerError(DescribeLocalError):
    """The worker processes (or Ray actors) of a collection could not load their models or keep stopping."""


class RayClusterError(DescribeLocalError):
    """The Ray cluster cannot be reached, or failed while describing."""


# -- the web server: who may ask, what was sent, how busy it is -------------------------------


class AuthError(DescribeLocalError):
    """A request lacks the token it needs."""

    http_status = 401


class TooManyAttempts(DescribeLocalError):
    """Too many wrong tokens from one address; try again after ``retry_after`` seconds."""

    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadHost(DescribeLocalError):
    """The request's Host header is not one this server answers to (``allowed_hosts``)."""

    http_status = 400


class NoCertificate(DescribeLocalError):
    """The /trust page's certificate: this server has none of its own to offer."""

    http_status = 404


class SignatureError(DescribeLocalError):
    """A signed URL was changed, or it has expired."""

    http_status = 403


class UploadTimeout(DescribeLocalError):
    """The upload did not arrive within the request's time budget."""

    http_status = 408


class UploadTooLarge(DescribeLocalError):
    """The request body is over the upload limit."""

    http_status = 413


class BadUpload(DescribeLocalError):
    """The request is not the multipart form the endpoint expects."""


class BadField(DescribeLocalError):
    """A form field has a value this server does not offer (an unknown language or voice)."""

    http_status = 422


class QueueFull(DescribeLocalError):
    """Too much work is waiting; try again after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FrameInFlight(DescribeLocalError):
    """A live-text client sent a frame while its last one was still being read: one at a time."""

    http_status = 429
    retry_after = 1


class NotReady(DescribeLocalError):
    """The models are still loading, or failed to load."""

    http_status = 503

    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobTimeout(DescribeLocalError):
    """A job ran past the request's time budget."""

    http_status = 504


class AudioGone(DescribeLocalError):
    """A validly signed clip that is no longer kept."""

    http_status = 410


class PersonNotFound(DescribeLocalError):
    """No such person in the gallery."""

    http_status = 404


class FacesUnavailable(DescribeLocalError):
    """The face models are not loaded, so the gallery cannot be changed."""

    http_status = 503


class PhotoNotKept(DescribeLocalError):
    """A photo id the server never gave out, for a question or a shared photo."""

    http_status = 404


class PhotoGone(DescribeLocalError):
    """A photo that was kept for questions (or shared) and has expired or been pushed out."""

    http_status = 410


class QuestionsUnavailable(DescribeLocalError):
    """No model loaded on this server answers questions about photos."""

    http_status = 503
