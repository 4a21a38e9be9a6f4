/// A tensor shape. Activations use NHWC; convolution weights are [outC, kH, kW, inC/groups];
/// dense weights are [outFeatures, inFeatures]. A dimension of -1 marks a dynamic size
/// (only the batch dimension of a graph input may be dynamic).
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public var rank: Int { dims.count }
    public subscript(_ axis: Int) -> Int {
        get { dims[axis] }
        set { dims[axis] = newValue }
    }

    public var isFullyKnown: Bool { dims.allSatisfy { $0 >= 0 } }

    /// The number of elements, or nil when a dimension is dynamic, negative, or the product overflows.
    public var elementCount: Int? { Shape.checkedProduct(dims) }

    /// Product of `values`, or nil on a negative value or overflow. Every size computed from
    /// untrusted input goes through here. Inlinable, so callers in other modules get a copy
    /// specialized to their collection: the generic one looks up `Collection`'s associated types
    /// at run time, slow the first time in a process (a cold load validates every tensor).
    @inlinable
    public static func checkedProduct<C: Collection>(_ values: C) -> Int? where C.Element == Int {
        var product = 1
        for value in values {
            guard value >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: value)
            if overflow { return nil }
            product = next
        }
        return product
    }

    /// `lhs * rhs`, or nil on overflow.
    public static func checkedMultiply(_ lhs: Int, _ rhs: Int) -> Int? {
        let (value, overflow) = lhs.multipliedReportingOverflow(by: rhs)
        return overflow ? nil : value
    }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: dims.count)
        var running = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            result[axis] = running
            running &*= max(dims[axis], 1)
        }
        return result
    }

    public var description: String {
        "[" + dims.map { $0 < 0 ? "?" : String($0) }.joined(separator: "x") + "]"
    }
}
