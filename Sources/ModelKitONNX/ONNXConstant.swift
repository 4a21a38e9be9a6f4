import ModelKitCore

/// Marks the dynamic batch dimension inside folded shape constants (the value a `Shape` op
/// reports for it). Arithmetic on it is refused; a `Reshape` turns it back into "copy dim 0".
let dynamicBatchMarker: Int64 = Int64.min + 1

/// A value known at import time: an initializer, a `Constant` node, or the folded result of
/// shape arithmetic. Shapes are in ONNX order.
struct Constant: Equatable {
    enum Elements: Equatable {
        case float([Float])
        case int([Int64])
    }

    var shape: [Int]
    var elements: Elements

    var count: Int {
        switch elements {
        case .float(let values): return values.count
        case .int(let values): return values.count
        }
    }

    var isInteger: Bool {
        if case .int = elements { return true }
        return false
    }

    init(shape: [Int], elements: Elements) {
        self.shape = shape
        self.elements = elements
    }

    init(shape: [Int], floats: [Float]) { self.init(shape: shape, elements: .float(floats)) }
    init(shape: [Int], ints: [Int64]) { self.init(shape: shape, elements: .int(ints)) }

    /// The values as integers (float constants must hold whole numbers).
    func integers() -> [Int64]? {
        switch elements {
        case .int(let values): return values
        case .float(let values):
            var result: [Int64] = []
            result.reserveCapacity(values.count)
            for value in values {
                guard value.isFinite, value == value.rounded(), abs(value) < 9.0e18 else { return nil }
                result.append(Int64(value))
            }
            return result
        }
    }

    /// The values as floats; nil when an integer is the dynamic batch marker.
    func floats() -> [Float]? {
        switch elements {
        case .float(let values): return values
        case .int(let values):
            guard !values.contains(dynamicBatchMarker) else { return nil }
            return values.map { Float($0) }
        }
    }

    /// The same elements with another shape of the same element count.
    func reshaped(_ shape: [Int]) -> Constant { Constant(shape: shape, elements: elements) }

    /// A constant of `shape` whose element i is this constant's element `indices[i]`.
    func picking(_ indices: [Int], shape: [Int]) -> Constant {
        switch elements {
        case .float(let values): return Constant(shape: shape, floats: indices.map { values[$0] })
        case .int(let values): return Constant(shape: shape, ints: indices.map { values[$0] })
        }
    }
}

/// Why a fold could not be done, turned into a node error by the caller.
struct FoldError: Error {
    var reason: String
}

enum ConstantMath {
    /// Row-major strides for `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            result[axis] = running
            running &*= max(shape[axis], 1)
        }
        return result
    }

    /// Visits every index of `shape` in row-major order, passing the multi-index.
    static func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
        guard let count = Shape.checkedProduct(shape), count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            body(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    static func checkedCount(_ shape: [Int], limit: Int) throws -> Int {
        guard let count = Shape.checkedProduct(shape) else { throw FoldError(reason: "shape \(shape) is invalid") }
        guard count <= limit else { throw FoldError(reason: "folded tensor of shape \(shape) exceeds \(limit) elements") }
        return count
    }

    /// numpy broadcasting of two ONNX shapes.
    static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let da = axis >= rank - a.count ? a[axis - (rank - a.count)] : 1
            let db = axis >= rank - b.count ? b[axis - (rank - b.count)] : 1
            guard da == db || da == 1 || db == 1 else { return nil }
            result[axis] = da == 1 ? db : da
        }
        return result
    }

    /// For each element of the broadcast `output` shape, the flat index into an operand of `shape`.
    static func broadcastIndices(from shape: [Int], to output: [Int]) -> [Int] {
        let offset = output.count - shape.count
        let sourceStrides = strides(shape)
        var result: [Int] = []
        result.reserveCapacity(Shape.checkedProduct(output) ?? 0)
        forEachIndex(output) { index in
            var flat = 0
            for axis in 0..<shape.count where shape[axis] != 1 {
                flat += index[axis + offset] * sourceStrides[axis]
            }
            result.append(flat)
        }
        return result
    }

    enum BinaryOp { case add, sub, mul, div }

    static func binary(_ op: BinaryOp, _ a: Constant, _ b: Constant, limit: Int) throws -> Constant {
        guard let shape = broadcast(a.shape, b.shape) else {
            throw FoldError(reason: "shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        _ = try checkedCount(shape, limit: limit)
        let ia = broadcastIndices(from: a.shape, to: shape)
        let ib = broadcastIndices(from: b.shape, to: shape)
        if case .int(let x) = a.elements, case .int(let y) = b.elements {
            var result: [Int64] = []
            result.reserveCapacity(ia.count)
            for (p, q) in zip(ia, ib) {
                let (u, v) = (x[p], y[q])
                guard u != dynamicBatchMarker, v != dynamicBatchMarker else {
                    throw FoldError(reason: "arithmetic on the dynamic batch dimension cannot be folded")
                }
                let value: (Int64, Bool)
                switch op {
                case .add: value = u.addingReportingOverflow(v)
                case .sub: value = u.subtractingReportingOverflow(v)
                case .mul: value = u.multipliedReportingOverflow(by: v)
                case .div:
                    guard v != 0 else { throw FoldError(reason: "integer division by zero") }
                    value = u.dividedReportingOverflow(by: v)
                }
                guard !value.1 else { throw FoldError(reason: "integer overflow") }
                result.append(value.0)
            }
            return Constant(shape: shape, ints: result)
        }
        guard !a.isInteger || !b.isInteger, let x = a.floats(), let y = b.floats() else {
            throw FoldError(reason: "arithmetic on the dynamic batch dimension cannot be folded")
        }
        guard a.isInteger == b.isInteger else {
            throw FoldError(reason: "operands have different element types")
        }
        let result: [Float] = zip(ia, ib).map { p, q in
            switch op {
            case .add: return x[p] + y[q]
            case .sub: return x[p] - y[q]
            case .mul: return x[p] * y[q]
            case .div: return x[p] / y[q]
            }
        }
        return Constant(shape: shape, floats: result)
    }

    static func transpose(_ c: Constant, permutation: [Int]) throws -> Constant {
        guard permutation.count == c.shape.count, permutation.sorted() == Array(0..<c.shape.count) else {
            throw FoldError(reason: "\(permutation) is not a permutation of \(c.shape.count) axes")
        }
        let outShape = permutation.map { c.shape[$0] }
        let inStrides = strides(c.shape)
        var indices: [Int] = []
        indices.reserveCapacity(c.count)
        forEachIndex(outShape) { index in
            var flat = 0
            for axis in 0..<index.count { flat += index[axis] * inStrides[permutation[axis]] }
            indices.append(flat)
        }
        return c.picking(indices, shape: outShape)
    }

    static func normalizeAxis(_ axis: Int64, rank: Int, inclusive: Bool = false) throws -> Int {
        let upper = Int64(inclusive ? rank : rank - 1)
        let value = axis < 0 ? axis + Int64(rank) : axis
        guard value >= 0, value <= upper else { throw FoldError(reason: "axis \(axis) is out of range for rank \(rank)") }
        return Int(value)
    }

    static func concat(_ parts: [Constant], axis: Int64, limit: Int) throws -> Constant {
        guard let first = parts.first else { throw FoldError(reason: "no inputs") }
        let rank = first.shape.count
        let a = try normalizeAxis(axis, rank: rank)
        var outShape = first.shape
        outShape[a] = 0
        for part in parts {
            guard part.shape.count == rank, part.isInteger == first.isInteger else {
                throw FoldError(reason: "inputs differ in rank or element type")
            }
            for axis in 0..<rank where axis != a && part.shape[axis] != first.shape[axis] {
                throw FoldError(reason: "input shapes \(first.shape) and \(part.shape) differ outside axis \(a)")
            }
            outShape[a] += part.shape[a]
        }
        _ = try checkedCount(outShape, limit: limit)
        let outer = Shape.checkedProduct(first.shape[..<a]) ?? 0
        var floats: [Float] = []
        var ints: [Int64] = []
        for o in 0..<outer {
            for part in parts {
                let inner = Shape.checkedProduct(part.shape[a...]) ?? 0
                switch part.elements {
                case .float(let values): floats.append(contentsOf: values[(o * inner)..<((o + 1) * inner)])
                case .int(let values): ints.append(contentsOf: values[(o * inner)..<((o + 1) * inner)])
                }
            }
        }
        return first.isInteger ? Constant(shape: outShape, ints: ints) : Constant(shape: outShape, floats: floats)
    }

    static func gather(_ data: Constant, indices: Constant, axis: Int64, limit: Int) throws -> Constant {
        guard let idx = indices.integers() else {
            throw FoldError(reason: "indices must be integers")
        }
        guard !data.shape.isEmpty else { throw FoldError(reason: "data must have rank >= 1") }
        let a = try normalizeAxis(axis, rank: data.shape.count)
        let dim = data.shape[a]
        var resolved: [Int] = []
        for value in idx {
            let index = value < 0 ? value + Int64(dim) : value
            guard index >= 0, index < Int64(dim) else { throw FoldError(reason: "index \(value) is out of range for size \(dim)") }
            resolved.append(Int(index))
        }
        let outShape = Array(data.shape[..<a]) + indices.shape + Array(data.shape[(a + 1)...])
        _ = try checkedCount(outShape, limit: limit)
        let outer = Shape.checkedProduct(data.shape[..<a]) ?? 0
        let inner = Shape.checkedProduct(data.shape[(a + 1)...]) ?? 0
        var picked: [Int] = []
        for o in 0..<outer {
            for index in resolved {
                let base = (o * dim + index) * inner
                for i in 0..<inner { picked.append(base + i) }
            }
        }
        return data.picking(picked, shape: outShape)
    }

    /// ONNX Slice (opset 10+) with clamping and negative steps.
    static func slice(_ data: Constant, starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?,
                      limit: Int) throws -> Constant {
        let rank = data.shape.count
        guard starts.count == ends.count else { throw FoldError(reason: "starts and ends differ in length") }
        let axisList = try (axes ?? (0..<Int64(starts.count)).map { $0 }).map { try normalizeAxis($0, rank: rank) }
        guard axisList.count == starts.count, Set(axisList).count == axisList.count else {
            throw FoldError(reason: "axes are repeated or differ in length from starts")
        }
        let stepList = steps ?? [Int64](repeating: 1, count: starts.count)
        guard stepList.count == starts.count else { throw FoldError(reason: "steps differ in length from starts") }
        var begin = [Int](repeating: 0, count: rank)
        var step = [Int](repeating: 1, count: rank)
        var outShape = data.shape
        for (k, axis) in axisList.enumerated() {
            let dim = Int64(data.shape[axis])
            let s = stepList[k]
            guard s != 0, s != Int64.min else { throw FoldError(reason: "step must not be 0") }
            func clampIndex(_ value: Int64, low: Int64, high: Int64) -> Int64 {
                let v = value < 0 ? (value < -dim ? low : value + dim) : value
                return min(max(v, low), high)
            }
            var start = starts[k], end = ends[k]
            if start == dynamicBatchMarker || end == dynamicBatchMarker {
                throw FoldError(reason: "slice bounds on the dynamic batch cannot be folded")
            }
            let count: Int64
            if s > 0 {
                start = clampIndex(start, low: 0, high: dim)
                end = clampIndex(end, low: 0, high: dim)
                count = end > start ? (end - start - 1) / s + 1 : 0  // ceil without overflow
            } else {
                start = clampIndex(start, low: -1, high: dim - 1)
                end = clampIndex(end, low: -1, high: dim - 1)
                count = start > end ? (start - end - 1) / (-s) + 1 : 0
            }
            begin[axis] = Int(start)
            step[axis] = Int(s)
            outShape[axis] = Int(count)
        }
        _ = try checkedCount(outShape, limit: limit)
        let inStrides = strides(data.shape)
        var picked: [Int] = []
        forEachIndex(outShape) { index in
            var flat = 0
            for axis in 0..<rank { flat += (begin[axis] + index[axis] * step[axis]) * inStrides[axis] }
            picked.append(flat)
        }
        return data.picking(picked, shape: outShape)
    }
}

// MARK: - TensorProto decoding

extension Constant {
    /// Reads an ONNX TensorProto, checking its declared size against `limits` before allocating.
    init(_ tensor: ONNXTensorProto, limits: Limits) throws {
        let name = tensor.name
        func invalid(_ reason: String) -> ONNXError { ONNXError.invalidTensor(name: name, reason: reason) }
        if tensor.isExternal { throw ONNXError.externalData(name: name) }
        guard tensor.dims.count <= limits.maxRank else {
            throw ONNXError.limitExceeded(what: "rank of tensor '\(name)'", value: tensor.dims.count, limit: limits.maxRank)
        }
        guard tensor.dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
            throw invalid("dimensions \(tensor.dims) must be between 0 and 2^31")
        }
        let shape = tensor.dims.map { Int($0) }
        guard let count = Shape.checkedProduct(shape) else { throw invalid("size of \(shape) overflows") }
        guard count <= limits.maxTensorElements else {
            throw ONNXError.limitExceeded(what: "element count of tensor '\(name)'", value: count,
                                          limit: limits.maxTensorElements)
        }
        let type = tensor.dataType
        let width: Int
        switch type {
        case ONNXDataType.float, ONNXDataType.int32, ONNXDataType.uint32: width = 4
        case ONNXDataType.int64, ONNXDataType.uint64, ONNXDataType.double: width = 8
        case ONNXDataType.int16, ONNXDataType.uint16, ONNXDataType.float16: width = 2
        case ONNXDataType.int8, ONNXDataType.uint8, ONNXDataType.bool: width = 1
        default: throw ONNXError.unsupportedDataType(name: name, dataType: type)
        }

        if let raw = tensor.rawData {
            guard raw.count == count * width else {
                throw invalid("raw_data has \(raw.count) bytes, expected \(count * width) for \(count) \(ONNXDataType.name(type)) values")
            }
            func word(_ i: Int) -> UInt64 {
                var value: UInt64 = 0
                for b in 0..<width { value |= UInt64(raw[i * width + b]) << (8 * UInt64(b)) }
                return value
            }
            switch type {
            case ONNXDataType.float:
                self.init(shape: shape, floats: (0..<count).map { Float(bitPattern: UInt32(truncatingIfNeeded: word($0))) })
            case ONNXDataType.double:
                self.init(shape: shape, floats: (0..<count).map { Float(Double(bitPattern: word($0))) })
            case ONNXDataType.float16:
                self.init(shape: shape, floats: (0..<count).map { halfToFloat(UInt16(truncatingIfNeeded: word($0))) })
            case ONNXDataType.int64:
                self.init(shape: shape, ints: (0..<count).map { Int64(bitPattern: word($0)) })
            case ONNXDataType.uint64:
                let values = (0..<count).map { word($0) }
                guard values.allSatisfy({ $0 <= UInt64(Int64.max) }) else { throw invalid("uint64 value exceeds int64") }
                self.init(shape: shape, ints: values.map { Int64($0) })
            case ONNXDataType.int32:
                self.init(shape: shape, ints: (0..<count).map { Int64(Int32(truncatingIfNeeded: word($0))) })
            case ONNXDataType.int16:
                self.init(shape: shape, ints: (0..<count).map { Int64(Int16(truncatingIfNeeded: word($0))) })
            case ONNXDataType.int8:
                self.init(shape: shape, ints: (0..<count).map { Int64(Int8(truncatingIfNeeded: word($0))) })
            default:  // uint32, uint16, uint8, bool
                self.init(shape: shape, ints: (0..<count).map { Int64(word($0)) })
            }
            return
        }

        switch type {
        case ONNXDataType.float:
            guard tensor.floatData.count == count else {
                throw invalid("float_data has \(tensor.floatData.count) values, expected \(count)")
            }
            self.init(shape: shape, floats: tensor.floatData)
        case ONNXDataType.int64:
            guard tensor.int64Data.count == count else {
                throw invalid("int64_data has \(tensor.int64Data.count) values, expected \(count)")
            }
            self.init(shape: shape, ints: tensor.int64Data)
        case ONNXDataType.int32, ONNXDataType.int16, ONNXDataType.int8, ONNXDataType.uint16, ONNXDataType.uint8,
             ONNXDataType.bool:
            guard tensor.int32Data.count == count else {
                throw invalid("int32_data has \(tensor.int32Data.count) values, expected \(count)")
            }
            self.init(shape: shape, ints: tensor.int32Data.map { Int64($0) })
        case ONNXDataType.float16:
            guard tensor.int32Data.count == count else {
                throw invalid("int32_data has \(tensor.int32Data.count) values, expected \(count)")
            }
            self.init(shape: shape, floats: tensor.int32Data.map { halfToFloat(UInt16(truncatingIfNeeded: $0)) })
        default:
            if count == 0 {
                self.init(shape: shape, ints: [])
            } else {
                throw invalid("\(ONNXDataType.name(type)) data is only read from raw_data")
            }
        }
    }
}

/// IEEE 754 binary16 bits to Float.
func halfToFloat(_ bits: UInt16) -> Float {
    let sign: UInt32 = UInt32(bits >> 15) << 31
    let exponent = Int((bits >> 10) & 0x1F)
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}
