import Glibc

/// One namespace's vectors: rows in one contiguous `[Float]`, with ids and metadata per row.
/// Removal moves the last row into the hole, so storage stays dense.
struct VectorTable {
    let dimensions: Int
    private(set) var vectors: [Float] = []
    private(set) var ids: [Int64] = []
    private(set) var metadata: [[String: String]] = []
    private var rowOfID: [Int64: Int] = [:]

    init(dimensions: Int) { self.dimensions = dimensions }

    var count: Int { ids.count }

    mutating func upsert(id: Int64, vector: UnsafeBufferPointer<Float>, metadata meta: [String: String], normalise: Bool) {
        var scale: Float = 1
        if normalise {
            let norm = Self.dot(vector.baseAddress!, vector.baseAddress!, dimensions).squareRoot()  // non-empty: dimensions ≥ 1
            scale = norm > 0 ? 1 / norm : 0
        }
        if let row = rowOfID[id] {
            let start = row * dimensions
            for i in 0..<dimensions { vectors[start + i] = vector[i] * scale }
            metadata[row] = meta
        } else {
            rowOfID[id] = ids.count
            ids.append(id)
            metadata.append(meta)
            for value in vector { vectors.append(value * scale) }
        }
    }

    mutating func remove(id: Int64) {
        guard let row = rowOfID.removeValue(forKey: id) else { return }
        let last = ids.count - 1
        if row != last {
            let movedID = ids[last]
            ids[row] = movedID
            metadata[row] = metadata[last]
            let from = last * dimensions, to = row * dimensions
            for i in 0..<dimensions { vectors[to + i] = vectors[from + i] }
            rowOfID[movedID] = row
        }
        ids.removeLast()
        metadata.removeLast()
        vectors.removeLast(dimensions)
    }

    /// The `topK` best rows among those matching every filter, best first; ties by smaller id.
    func search(_ query: UnsafeBufferPointer<Float>, topK: Int, filters: [(String, String)], normalise: Bool) -> [(Int64, Float)] {
        guard topK > 0, count > 0 else { return [] }
        var q = Array(query)
        if normalise {
            let norm = q.withUnsafeBufferPointer { Self.dot($0.baseAddress!, $0.baseAddress!, dimensions) }.squareRoot()
            if norm > 0 { for i in q.indices { q[i] /= norm } }
        }
        var heap = TopK(capacity: topK)
        q.withUnsafeBufferPointer { qp in
            vectors.withUnsafeBufferPointer { vp in
                let base = vp.baseAddress!  // count > 0, so storage is non-empty
                for row in 0..<count {
                    if !filters.isEmpty, !filters.allSatisfy({ metadata[row][$0.0] == $0.1 }) { continue }
                    let score = Self.dot(qp.baseAddress!, base + row * dimensions, dimensions)
                    heap.offer(id: ids[row], score: score)
                }
            }
        }
        return heap.sorted()
    }

    /// Dot product, 16 lanes at a time.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum = SIMD16<Float>()
        var i = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while i + 16 <= n {
            let va = rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let vb = rawB.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            sum += va * vb  // not addingProduct: without FMA in the target it becomes 16 libm fmaf calls
            i += 16
        }
        var total = sum.sum()
        while i < n {
            total += a[i] * b[i]
            i += 1
        }
        return total
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
