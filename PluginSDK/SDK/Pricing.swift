import OrionPluginABI

/// A pricing table: model name → prices.
public protocol PricingPlugin: AnyObject, Sendable {
    /// The prices of `model`; throw ``PluginError/Code/notFound`` for an unknown model.
    func price(model: PluginString) throws(PluginError) -> ModelPrice
}

/// Prices in nano-USD per one million tokens (1 USD = 1,000,000,000). `nil` = not priced.
public struct ModelPrice: Sendable, Hashable {
    public var inputPerMillion: Int64?
    public var outputPerMillion: Int64?
    public var cacheReadPerMillion: Int64?
    public var cacheWritePerMillion: Int64?

    public init(
        inputPerMillion: Int64?, outputPerMillion: Int64?, cacheReadPerMillion: Int64? = nil,
        cacheWritePerMillion: Int64? = nil
    ) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
        self.cacheReadPerMillion = cacheReadPerMillion
        self.cacheWritePerMillion = cacheWritePerMillion
    }

    public init(_ raw: orion_price) {
        func value(_ v: Int64) -> Int64? { v < 0 ? nil : v }
        self.init(
            inputPerMillion: value(raw.input_per_million), outputPerMillion: value(raw.output_per_million),
            cacheReadPerMillion: value(raw.cache_read_per_million),
            cacheWritePerMillion: value(raw.cache_write_per_million))
    }

    public var raw: orion_price {
        orion_price(
            struct_size: UInt32(MemoryLayout<orion_price>.size), input_per_million: inputPerMillion ?? -1,
            output_per_million: outputPerMillion ?? -1, cache_read_per_million: cacheReadPerMillion ?? -1,
            cache_write_per_million: cacheWritePerMillion ?? -1)
    }
}
