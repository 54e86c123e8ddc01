import Glibc
import OrionVectorKernels

/// One namespace's vectors: rows in one contiguous `[Float]`, with ids and metadata per row.
/// Removal moves the last row into the hole, so storage stays dense.
///
/// Beside the float32 rows (the truth) each row has an int8 copy — a scale per row, the codes,
/// and two norms — a quarter of the bytes to read per search. A search scores every row on the
/// codes, bounds each score's error, and recomputes in float32 only the rows whose upper bound
/// reaches the k-th best lower bound: the answer is exactly the float32 answer, for a quarter of
/// the memory traffic (see ``search(_:topK:filters:normalise:)``).
struct VectorTable {
    let dimensions: Int
    private(set) var vectors: [Float] = []
    private(set) var ids: [Int64] = []
    private(set) var metadata: [[String: String]] = []
    private var rowOfID: [Int64: Int] = [:]
    /// int8 codes, `dimensions` per row: row ≈ scale × codes.
    private var codes: [Int8] = []
    /// Per row: the code scale, ‖row − scale × codes‖ (rounded up), ‖scale × codes‖, and the sum
    /// of the codes.
    private var scales: [Float] = []
    private var codeErrors: [Float] = []
    private var codeNorms: [Float] = []
    private var codeSums: [Int32] = []

    init(dimensions: Int) { self.dimensions = dimensions }

    var count: Int { ids.count }

    mutating func upsert(id: Int64, vector: UnsafeBufferPointer<Float>, metadata meta: [String: String], normalise: Bool) {
        var scale: Float = 1
        if normalise {
            let norm = Kernels.dotF32(vector.baseAddress!, vector.baseAddress!, dimensions).squareRoot()  // non-empty: dimensions ≥ 1
            scale = norm > 0 ? 1 / norm : 0
        }
        let row: Int
        if let existing = rowOfID[id] {
            row = existing
            let start = row * dimensions
            for i in 0..<dimensions { vectors[start + i] = vector[i] * scale }
            metadata[row] = meta
        } else {
            row = ids.count
            rowOfID[id] = row
            ids.append(id)
            metadata.append(meta)
            for value in vector { vectors.append(value * scale) }
            codes.append(contentsOf: repeatElement(0, count: dimensions))
            scales.append(0)
            codeErrors.append(0)
            codeNorms.append(0)
            codeSums.append(0)
        }
        encode(row: row)
    }

    /// Writes row `row`'s int8 codes, scale and norms from its float32 values.
    private mutating func encode(row: Int) {
        let start = row * dimensions
        let quantised = vectors.withUnsafeBufferPointer { values in
            codes.withUnsafeMutableBufferPointer { out in
                Quantised(values: UnsafeBufferPointer(rebasing: values[start..<start + dimensions]), codes: UnsafeMutableBufferPointer(rebasing: out[start..<start + dimensions]))
            }
        }
        scales[row] = quantised.scale
        codeErrors[row] = quantised.error
        codeNorms[row] = quantised.norm
        codeSums[row] = codes[start..<start + dimensions].reduce(0) { $0 + Int32($1) }
    }

    mutating func remove(id: Int64) {
        guard let row = rowOfID.removeValue(forKey: id) else { return }
        let last = ids.count - 1
        if row != last {
            let movedID = ids[last]
            ids[row] = movedID
            metadata[row] = metadata[last]
            let from = last * dimensions, to = row * dimensions
            for i in 0..<dimensions {
                vectors[to + i] = vectors[from + i]
                codes[to + i] = codes[from + i]
            }
            scales[row] = scales[last]
            codeErrors[row] = codeErrors[last]
            codeNorms[row] = codeNorms[last]
            codeSums[row] = codeSums[last]
            rowOfID[movedID] = row
        }
        ids.removeLast()
        metadata.removeLast()
        vectors.removeLast(dimensions)
        codes.removeLast(dimensions)
        scales.removeLast()
        codeErrors.removeLast()
        codeNorms.removeLast()
        codeSums.removeLast()
    }

    /// The `topK` best rows among those matching every filter, best first; ties by smaller id.
    ///
    /// Exact, in two passes. With q̂ and x̂ the int8 approximations of the query and a row,
    /// |q·x − q̂·x̂| ≤ ‖q‖·‖x − x̂‖ + ‖q − q̂‖·‖x̂‖ (plus a margin for float rounding). Let τ be the
    /// k-th largest lower bound q̂·x̂ − bound: at least k rows score ≥ τ exactly, so every row of
    /// the exact top k has an upper bound ≥ τ. Only those rows are scored in float32.
    func search(_ query: UnsafeBufferPointer<Float>, topK: Int, filters: [(String, String)], normalise: Bool) -> [(Int64, Float)] {
        guard topK > 0, count > 0 else { return [] }
        var q = Array(query)
        if normalise {
            let norm = q.withUnsafeBufferPointer { Kernels.dotF32($0.baseAddress!, $0.baseAddress!, dimensions) }.squareRoot()
            if norm > 0 { for i in q.indices { q[i] /= norm } }
        }
        // 1 for a row passing the filters; nil when there are none.
        let mask: [UInt8]? = filters.isEmpty ? nil : metadata.map { row in filters.allSatisfy { row[$0.0] == $0.1 } ? 1 : 0 }
        let rows: [UInt32]
        if count > 4 * topK, count >= 256 {
            rows = candidates(query: q, topK: topK, mask: mask)
        } else {
            // Few rows: the bounds would not pay for themselves.
            rows = (0..<count).filter { row in (mask?[row] ?? 1) != 0 }.map { UInt32($0) }
        }
        var scores = [Float](repeating: 0, count: rows.count)
        q.withUnsafeBufferPointer { qp in
            vectors.withUnsafeBufferPointer { vp in
                Kernels.dotF32Rows(qp.baseAddress!, vp.baseAddress!, rows, rows.count, dimensions, &scores)  // count > 0: storage is non-empty
            }
        }
        var heap = TopK(capacity: topK)
        for (row, score) in zip(rows, scores) { heap.offer(id: ids[Int(row)], score: score) }
        return heap.sorted()
    }

    /// The rows whose score may reach the exact top `topK`, by the int8 pass, in row order.
    private func candidates(query: [Float], topK: Int, mask: [UInt8]?) -> [UInt32] {
        var queryCodes = [Int8](repeating: 0, count: dimensions)
        let q = query.withUnsafeBufferPointer { values in queryCodes.withUnsafeMutableBufferPointer { Quantised(values: values, codes: $0) } }
        let queryNorm = query.withUnsafeBufferPointer { Kernels.dotF32($0.baseAddress!, $0.baseAddress!, dimensions) }.squareRoot()
        var integerDots = [Int32](unsafeUninitializedCapacity: count) { _, initialised in initialised = count }  // the kernel writes every entry
        queryCodes.withUnsafeBufferPointer { qc in
            codes.withUnsafeBufferPointer { rows in
                codeSums.withUnsafeBufferPointer { sums in
                    integerDots.withUnsafeMutableBufferPointer { out in
                        Kernels.dotI8Rows(qc.baseAddress!, rows.baseAddress!, sums.baseAddress!, count, dimensions, out.baseAddress!)
                    }
                }
            }
        }
        // Float rounding in both the approximation and the float32 score: 4·d units of
        // roundoff relative to ‖q‖·‖x‖ covers a d-term sum with room to spare.
        let rounding = Float(dimensions + 16) * 2.4e-7
        // Scratch and output the kernel writes before it reads.
        var scratch = [Float](unsafeUninitializedCapacity: 2 * count) { _, initialised in initialised = 2 * count }
        var rows = [UInt32](unsafeUninitializedCapacity: count) { _, initialised in initialised = count }
        let found = Kernels.chosen.candidates(
            integerDots, scales, codeErrors, codeNorms, mask, count, q.scale, queryNorm, q.error, rounding, topK, &scratch, &rows)
        rows.removeLast(count - found)
        return rows
    }
}

/// The dot-product kernels for this CPU, chosen once.
enum Kernels {
    // Immutable after its one initialisation: a table of C function pointers and a static string.
    nonisolated(unsafe) static let chosen: orion_vk_kernels = orion_vk_best().pointee

    @inline(__always)
    static func dotF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        chosen.dot_f32(a, b, n)
    }

    @inline(__always)
    static func dotF32Rows(_ query: UnsafePointer<Float>, _ rows: UnsafePointer<Float>, _ which: [UInt32], _ n: Int, _ dimensions: Int, _ out: inout [Float]) {
        chosen.dot_f32_rows(query, rows, which, n, dimensions, &out)
    }

    @inline(__always)
    static func dotI8Rows(
        _ query: UnsafePointer<Int8>, _ rows: UnsafePointer<Int8>, _ sums: UnsafePointer<Int32>, _ count: Int, _ dimensions: Int,
        _ out: UnsafeMutablePointer<Int32>
    ) {
        chosen.dot_i8_rows(query, rows, sums, count, dimensions, out)
    }
}

/// A float vector's int8 approximation: codes in [-127, 127] with one scale, the error norm
/// ‖v − scale·codes‖ rounded up, and ‖scale·codes‖.
struct Quantised {
    var scale: Float
    var error: Float
    var norm: Float

    init(values: UnsafeBufferPointer<Float>, codes: UnsafeMutableBufferPointer<Int8>) {
        var largest: Float = 0
        for value in values where value.isFinite { largest = max(largest, abs(value)) }
        scale = largest / 127
        guard scale > 0 else {
            for i in codes.indices { codes[i] = 0 }
            error = 0
            norm = 0
            for value in values { error += value * value }
            error = error.squareRoot().nextUp
            return
        }
        var errorSquares: Double = 0, normSquares: Double = 0
        for i in values.indices {
            let code = max(-127, min(127, (values[i] / scale).rounded()))
            codes[i] = Int8(code)
            let approximation = Double(code) * Double(scale)
            let difference = Double(values[i]) - approximation
            errorSquares += difference * difference
            normSquares += approximation * approximation
        }
        error = Float(errorSquares.squareRoot() * (1 + 1e-6)).nextUp
        norm = Float(normSquares.squareRoot() * (1 + 1e-6)).nextUp
    }
}

/// A bounded min-heap keeping the best `capacity` (score, id) pairs.
struct TopK {
    let capacity: Int
    private var items: [(id: Int64, score: Float)] = []

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    /// True when `a` ranks below `b`: lower score, or equal score and larger id.
    @inline(__always)
    private static func worse(_ a: (id: Int64, score: Float), _ b: (id: Int64, score: Float)) -> Bool {
        a.score != b.score ? a.score < b.score : a.id > b.id
    }

    mutating func offer(id: Int64, score: Float) {
        let item = (id: id, score: score)
        if items.count < capacity {
            items.append(item)
            siftUp(items.count - 1)
        } else if Self.worse(items[0], item) {
            items[0] = item
            siftDown(0)
        }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.worse(items[child], items[parent]) else { return }
            items.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var worst = parent
            if left < items.count, Self.worse(items[left], items[worst]) { worst = left }
            if right < items.count, Self.worse(items[right], items[worst]) { worst = right }
            guard worst != parent else { return }
            items.swapAt(parent, worst)
            parent = worst
        }
    }

    func sorted() -> [(Int64, Float)] {
        items.sorted { Self.worse($1, $0) }.map { ($0.id, $0.score) }
    }
}

/// A pthread read-write lock: many concurrent searches, exclusive writes.
final class ReadWriteLock: @unchecked Sendable {
    // @unchecked: the pthread lock is the synchronisation; it is initialised once and never moved.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func write<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
