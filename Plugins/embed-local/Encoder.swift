import Foundation
import OrionONNXRuntime
import OrionPluginSDK
import Synchronization

/// Why embed-local could not start or embed; `message` says what to fix.
struct EmbedError: Error, Sendable {
    var message: String
    static func config(_ message: String) -> EmbedError { EmbedError(message: message) }
    /// The NUL-terminated message the C bridge wrote into `buffer`.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    /// `relativeTo`: the working directory a relative path was resolved against.
    static func missingFile(_ role: String, _ path: String, relativeTo directory: String? = nil) -> EmbedError {
        let resolved = directory.map { " (a relative path, resolved against the working directory \($0))" } ?? ""
        return EmbedError(
            message: "the \(role) '\(path)'\(resolved) does not exist; run scripts/embed-setup.sh from the repository (the "
                + "README's run and test commands do), or point the instance's config at your own file (absolute paths in production)")
    }
}

/// One ONNX encoder session: token ids in, pooled and normalised vectors out. Safe to use from
/// several threads at once.
final class Encoder: @unchecked Sendable {
    private let session: OpaquePointer
    private let wantsTokenTypes: Bool
    private let padding: Int64
    /// The hidden size, read from a probe run at start-up.
    private(set) var dimensions = 0

    init(runtime: String, model: String, threads: Int, spinning: Bool, padding: Int32) throws(EmbedError) {
        var error = [CChar](repeating: 0, count: 1024)
        if orion_ort_load(runtime, &error, error.count) != 0 {
            throw EmbedError(message: EmbedError.text(error))
        }
        guard let session = orion_ort_session_open(model, Int32(threads), spinning ? 1 : 0, &error, error.count) else {
            throw EmbedError(message: EmbedError.text(error))
        }
        self.session = session
        wantsTokenTypes = orion_ort_session_wants_token_types(session) != 0
        self.padding = Int64(padding)
        // A probe run reads the hidden size and proves the model runs before the instance is
        // published.
        let probe = try embed([[0, 0]], maxBatch: 1)
        dimensions = probe.count
    }

    deinit { orion_ort_session_close(session) }

    /// Vectors for token-id rows, in the rows' order, `dimensions` floats each. Rows are sorted by
    /// length and batched (at most `maxBatch` per inference) so that padding stays under a fifth of
    /// the tokens computed: a batch padded to its longest row costs as if every row were that long.
    func embed(_ rows: [[Int32]], maxBatch: Int) throws(EmbedError) -> [Float] {
        let order = rows.indices.sorted { rows[$0].count < rows[$1].count }
        var out: [Float] = []
        var width = dimensions
        var start = 0
        while start < order.count {
            // Grow the batch while its padded size stays within 1.25 × its real tokens.
            var end = start + 1, tokens = rows[order[start]].count
            while end < order.count, end - start < maxBatch {
                let longest = rows[order[end]].count
                guard (end - start + 1) * longest * 4 <= (tokens + longest) * 5 else { break }
                tokens += longest
                end += 1
            }
            let chunk = Array(order[start..<end])
            let pooled = try run(chunk.map { rows[$0] })
            if width == 0 { width = pooled.count / chunk.count }
            if out.isEmpty { out = [Float](repeating: 0, count: rows.count * width) }
            for (k, row) in chunk.enumerated() {
                for d in 0..<width { out[row * width + d] = pooled[k * width + d] }
            }
            start = end
        }
        return out
    }

    /// One inference over rows padded to the longest; returns mean-pooled, L2-normalised vectors.
    private func run(_ rows: [[Int32]]) throws(EmbedError) -> [Float] {
        let batch = rows.count
        let sequence = rows.map(\.count).max() ?? 0
        var ids = [Int64](repeating: padding, count: batch * sequence)
        var mask = [Int64](repeating: 0, count: batch * sequence)
        for (b, row) in rows.enumerated() {
            for (s, id) in row.enumerated() {
                ids[b * sequence + s] = Int64(id)
                mask[b * sequence + s] = 1
            }
        }
        let types = wantsTokenTypes ? [Int64](repeating: 0, count: batch * sequence) : []
        var output = orion_ort_output()
        var error = [CChar](repeating: 0, count: 1024)
        let status = types.withUnsafeBufferPointer { types in
            orion_ort_run(
                session, ids, mask, wantsTokenTypes ? types.baseAddress : nil, Int64(batch), Int64(sequence), &output, &error,
                error.count)
        }
        defer { orion_ort_output_release(&output) }
        guard status == 0, let data = output.data else { throw EmbedError(message: EmbedError.text(error)) }
        let hidden = Int(output.hidden)
        var pooled = [Float](repeating: 0, count: batch * hidden)
        pooled.withUnsafeMutableBufferPointer { pooled in
            for b in 0..<batch {
                let target = pooled.baseAddress! + b * hidden
                let tokens = rows[b].count
                for s in 0..<tokens {
                    let source = data + (b * sequence + s) * hidden
                    for d in 0..<hidden { target[d] += source[d] }
                }
                var norm: Float = 0
                for d in 0..<hidden {
                    target[d] /= Float(tokens)
                    norm += target[d] * target[d]
                }
                let scale = norm > 0 ? 1 / norm.squareRoot() : 0
                for d in 0..<hidden { target[d] *= scale }
            }
        }
        return pooled
    }
}

/// Concurrency bound: `slots` calls run at once, up to `queueLimit` wait (first come, first
/// served), the rest are refused. Deciding and queueing happen under one lock.
final class Gate: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, any Error>] = []
    }
    private let state: Mutex<State>
    private let queueLimit: Int

    init(slots: Int, queueLimit: Int) {
        state = Mutex(State(free: slots))
        self.queueLimit = queueLimit
    }

    /// Returns holding a slot, or throws resource-exhausted when the queue is full.
    func enter() async throws {
        // Fast path: a free slot is taken without suspending.
        let taken = state.withLock { state in
            guard state.free > 0 else { return false }
            state.free -= 1
            return true
        }
        if taken { return }
        enum Decision { case go, queued, refuse }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let decision: Decision = state.withLock { state in
                if state.free > 0 {
                    state.free -= 1
                    return .go
                }
                guard state.waiting.count < queueLimit else { return .refuse }
                state.waiting.append(continuation)
                return .queued
            }
            switch decision {
            case .go: continuation.resume()
            case .queued: break  // resumed by leave()
            case .refuse:
                continuation.resume(
                    throwing: PluginError(.resourceExhausted, "every embedding slot is busy and \(queueLimit) calls are waiting; retry shortly"))
            }
        }
    }

    /// Hands the slot to the longest waiter, or frees it.
    func leave() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
