/// Per-worker values in an array indexed by worker id (ids are small and dense): the hot paths look
/// up a path's source for every route they send, and an array index costs no hashing.
struct WorkerTable<Value> {
    private var values: [Value?] = []

    subscript(id: WorkerID) -> Value? {
        get { id >= 0 && id < values.count ? values[id] : nil }
        set {
            guard id >= 0 else { return }
            if id >= values.count {
                guard newValue != nil else { return }
                values.append(contentsOf: repeatElement(nil, count: id - values.count + 1))
            }
            values[id] = newValue
        }
    }
}
