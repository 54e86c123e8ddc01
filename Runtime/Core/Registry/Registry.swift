import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// One tier as published: its limits and, per capability, instance ids (primary first).
public struct Tier: Sendable, Hashable {
    public var name: String
    public var requestsPerHour: Int
    public var costCapUSD: Double
    public var capabilities: [String: [String]]
    /// Model name → engine routes, primary first (`tiers.<name>.models`).
    public var models: [String: [ModelRoute]] = [:]
}

/// An immutable view of everything published: instances by id and tiers by name.
public struct RegistrySnapshot: Sendable {
    public let generation: Int
    public let instances: [String: InstanceHandle]
    public let tiers: [String: Tier]

    public static let empty = RegistrySnapshot(generation: 0, instances: [:], tiers: [:])

    /// Ids of the tiers whose manifest maps some capability to `instanceID`.
    public func tiers(using instanceID: String) -> [String] {
        tiers.values.filter { $0.capabilities.values.contains { $0.contains(instanceID) } }.map(\.name).sorted()
    }
    /// One line per tier capability none of whose mapped instances is loaded (each refused at
    /// load, say): the tier cannot serve that capability until a reload fixes it.
    public var unservedCapabilities: [String] {
        tiers.values.sorted { $0.name < $1.name }.flatMap { tier in
            tier.capabilities.sorted { $0.key < $1.key }.compactMap { capability, ids in
                ids.contains { instances[$0] != nil }
                    ? nil : "tier '\(tier.name)' has no loaded instance for '\(capability)' (\(ids.joined(separator: ", ")))"
            }
        }
    }
}

/// Why a lookup found nothing.
public struct RegistryError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        public static let unknownInstance = Code(rawValue: "unknown-instance")
        public static let wrongKind = Code(rawValue: "wrong-kind")
        public static let unknownTier = Code(rawValue: "unknown-tier")
        public static let capabilityNotMapped = Code(rawValue: "capability-not-mapped")
    }
    public var code: Code
    public var message: String
    public var description: String { "[\(code)] \(message)" }
}

/// Plugin instances by id and kind, and tiers by name, as one atomically swapped snapshot.
///
/// Reads take the lock only to copy the snapshot reference (and to count a lease), never across
/// an `await` or a plugin call. Publishing a new snapshot retires the instances that left it;
/// each is destroyed after its last lease ends.
public final class Registry: Sendable {
    private let current = Mutex(RegistrySnapshot.empty)

    public init() {}

    /// The current snapshot.
    public var snapshot: RegistrySnapshot { current.withLock { $0 } }

    /// Leases instance `id`, which must provide `kind`.
    public func lease(kind: PluginKind, id: String) throws(RegistryError) -> Lease {
        let handle: InstanceHandle? = current.withLock { snapshot in
            guard let handle = snapshot.instances[id], handle.info.kinds.contains(kind) else { return nil }
            handle.retain()
            return handle
        }
        guard let handle else {
            let snapshot = self.snapshot
            if let other = snapshot.instances[id] {
                throw RegistryError(code: .wrongKind, message: "instance '\(id)' is a \(other.info.kinds), not a \(kind)")
            }
            throw RegistryError(code: .unknownInstance, message: "no instance '\(id)' is loaded; known: \(snapshot.instances.keys.sorted().joined(separator: ", "))")
        }
        return Lease(handle)
    }

    /// Instance ids a tier maps to `capability`, primary first.
    public func instanceIDs(tier: String, capability: String) throws(RegistryError) -> [String] {
        let snapshot = self.snapshot
        guard let entry = snapshot.tiers[tier] else {
            throw RegistryError(code: .unknownTier, message: "no tier '\(tier)'; known: \(snapshot.tiers.keys.sorted().joined(separator: ", "))")
        }
        guard let ids = entry.capabilities[capability], !ids.isEmpty else {
            throw RegistryError(code: .capabilityNotMapped, message: "tier '\(tier)' maps no instance to '\(capability)'")
        }
        return ids
    }

    /// Leases the first loaded instance a tier maps to `capability`.
    public func lease(tier: String, capability: String, kind: PluginKind) throws(RegistryError) -> Lease {
        let ids = try instanceIDs(tier: tier, capability: capability)
        var lastError: RegistryError?
        for id in ids {
            do throws(RegistryError) {
                return try lease(kind: kind, id: id)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RegistryError(code: .capabilityNotMapped, message: "tier '\(tier)' has no loaded instance for '\(capability)'")
    }

    /// Publishes `instances` and `tiers` as the next snapshot; retires every handle that left.
    @discardableResult
    func publish(instances: [String: InstanceHandle], tiers: [String: Tier]) -> RegistrySnapshot {
        let (old, new) = current.withLock { snapshot -> (RegistrySnapshot, RegistrySnapshot) in
            let next = RegistrySnapshot(generation: snapshot.generation + 1, instances: instances, tiers: tiers)
            let previous = snapshot
            snapshot = next
            return (previous, next)
        }
        for (id, handle) in old.instances where new.instances[id] !== handle {
            handle.retire()
        }
        return new
    }
}
