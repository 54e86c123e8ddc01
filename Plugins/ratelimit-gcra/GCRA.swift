/// The Generic Cell Rate Algorithm as a value: one key's state is its theoretical arrival time
/// (TAT). Pure arithmetic, no clock, no I/O.
///
/// Times are kept in *scaled* units (nanoseconds × `limit`), so the emission interval
/// `period / limit` is an exact integer (`period` nanoseconds) and no rounding ever drifts.
struct GCRAPolicy: Sendable, Equatable {
    /// Requests (cost units) admitted per period, which is also the burst capacity.
    let limit: Int64
    /// The period in nanoseconds.
    let periodNanoseconds: Int64

    /// Emission interval in scaled units.
    var interval: Int128 { Int128(periodNanoseconds) }
    /// Delay variation tolerance (burst) in scaled units: `limit` intervals.
    var tolerance: Int128 { Int128(periodNanoseconds) * Int128(limit) }

    func scaled(_ nanoseconds: Int64) -> Int128 { Int128(nanoseconds) * Int128(limit) }

    /// Scaled units back to nanoseconds, rounding up so a caller never retries too early.
    func nanoseconds(ceil value: Int128) -> Int64 {
        guard value > 0 else { return 0 }
        return Int64((value + Int128(limit) - 1) / Int128(limit))
    }

    /// What one acquire decides, and the state to store.
    struct Outcome: Equatable {
        var allowed: Bool
        /// The new TAT to store (unchanged when refused).
        var tat: Int128
        var remaining: Int64
        var retryAfterNanoseconds: Int64
        var resetNanoseconds: Int64
    }

    /// Decides `cost` units at `now` (scaled) for a key whose stored TAT is `storedTAT` (nil = new key).
    func decide(storedTAT: Int128?, now: Int128, cost: Int64) -> Outcome {
        let tat = max(storedTAT ?? now, now)
        let newTAT = tat + Int128(cost) * interval
        let allowAt = newTAT - tolerance
        if now < allowAt {
            // Refused: state unchanged. Remaining is what the current TAT still leaves.
            let remaining = (tolerance - (tat - now)) / interval
            return Outcome(
                allowed: false, tat: tat, remaining: Int64(max(0, remaining)),
                retryAfterNanoseconds: nanoseconds(ceil: allowAt - now),
                resetNanoseconds: nanoseconds(ceil: tat - now))
        }
        let remaining = (tolerance - (newTAT - now)) / interval
        return Outcome(
            allowed: true, tat: newTAT, remaining: Int64(max(0, remaining)), retryAfterNanoseconds: 0,
            resetNanoseconds: nanoseconds(ceil: newTAT - now))
    }
}
