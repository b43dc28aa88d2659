# Buffers are any C-contiguous buffer-protocol objects (numpy arrays, memoryviews).
class Kernel:
    def __init__(
        self, keys: object, order: object, buckets: object, offsets: object, records: object
    ) -> None: ...
    def position(self, key: int, /) -> int: ...
    def records(self, key: int, /) -> tuple[tuple[int, int, int, int, int, int], ...]: ...
    def ranges(self, keys: object, lo_out: object, hi_out: object, /) -> None: ...

class Scanner:
    def __init__(
        self,
        kernel: Kernel,
        type_always: object,
        type_known: object,
        type_cude: object,
        type_modes: object,
        type_windows: object,
        clock_starts: object,
        clock_offsets: object,
        holidays: object,
        masked: object,
        confusable: dict[str, str],
    ) -> None: ...
    def scan(self, text: str, t: int, mask: int, /) -> tuple[list[int], int]: ...
    def near(self, text: str, t: int, mask: int, /) -> list[str]: ...

class Judge:
    def __init__(
        self,
        scanner: Scanner,
        overlay: object,
        id_blob: object,
        id_offsets: object,
        built_at: float,
        gates: dict[str, tuple[bool, int, int, int, bytes, bytes]],
        limits: tuple[float, float, float, float, float],
        verdicts: object,
        sentinels: tuple[str, ...],
        reasons: tuple[str, ...],
    ) -> None: ...
    def native(
        self,
        plate: str,
        ts: float,
        gate: str,
        confidence: float | None,
        now: float,
        event_id: str | None,
        /,
    ) -> bytes | None: ...
    def verdict(
        self, plate: str, ts: float, gate: str, confidence: float | None, now: float, /
    ) -> tuple[str, str, str, list[str], int, int | None] | None: ...
    def logged(
        self,
        plate: str,
        ts: float,
        gate: str,
        confidence: float | None,
        now: float,
        event_id: str | None,
        transit_id: str,
        /,
    ) -> tuple[bytes, tuple[str, str], str, list[str], int, int | None] | None: ...
