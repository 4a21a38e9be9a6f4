/// A minimal protobuf wire-format writer for building small (and deliberately broken) ONNX
/// models inside tests, independent of the importer's generated parser.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func int(_ field: Int, _ value: Int64) {
        tag(field, 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func float(_ field: Int, _ value: Float) {
        tag(field, 5)
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
    }

    mutating func data(_ field: Int, _ value: [UInt8]) {
        tag(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        data(field, inner.bytes)
    }
}

/// Builders for ONNX messages with the official field numbers.
enum ONNXBuilder {
    enum Dim {
        case value(Int64)
        case parameter(String)
    }

    static func valueInfo(_ w: inout ProtoWriter, name: String, elementType: Int64 = 1, dims: [Dim]) {
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, elementType)
                tensor.message(2) { shape in
                    for dim in dims {
                        shape.message(1) { d in
                            switch dim {
                            case .value(let v): d.int(1, v)
                            case .parameter(let p): d.string(2, p)
                            }
                        }
                    }
                }
            }
        }
    }

    struct Attribute {
        var name: String
        var int: Int64?
        var ints: [Int64]?
        var float: Float?
    }

    static func node(_ w: inout ProtoWriter, op: String, name: String, inputs: [String], outputs: [String],
                     domain: String? = nil, attributes: [Attribute] = []) {
        for input in inputs { w.string(1, input) }
        for output in outputs { w.string(2, output) }
        w.string(3, name)
        w.string(4, op)
        if let domain { w.string(7, domain) }
        for attribute in attributes {
            w.message(5) { a in
                a.string(1, attribute.name)
                if let i = attribute.int { a.int(3, i); a.int(20, 2) }
                if let f = attribute.float { a.float(2, f); a.int(20, 1) }
                if let list = attribute.ints { for v in list { a.int(8, v) }; a.int(20, 7) }
            }
        }
    }

    /// A float initializer stored as raw little-endian bytes (`values` may disagree with `dims`
    /// on purpose).
    static func initializer(_ w: inout ProtoWriter, name: String, dims: [Int64], values: [Float], dataType: Int64 = 1) {
        for d in dims { w.int(1, d) }
        w.int(2, dataType)
        w.string(8, name)
        w.data(9, values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> UInt32(8 * $0)) } })
    }

    /// A model with one graph input `x` and output `y`; `graph` adds nodes and initializers.
    static func model(opset: Int64? = 17, input: [Dim] = [.value(1), .value(3), .value(4), .value(4)],
                      inputType: Int64 = 1, graph: (inout ProtoWriter) -> Void) -> [UInt8] {
        var w = ProtoWriter()
        w.int(1, 8)
        if let opset { w.message(8) { o in o.string(1, ""); o.int(2, opset) } }
        w.message(7) { g in
            graph(&g)
            g.string(2, "test")
            g.message(11) { valueInfo(&$0, name: "x", elementType: inputType, dims: input) }
            g.message(12) { valueInfo(&$0, name: "y", dims: []) }
        }
        return w.bytes
    }

    static func relu(_ g: inout ProtoWriter) {
        g.message(1) { node(&$0, op: "Relu", name: "relu", inputs: ["x"], outputs: ["y"]) }
    }
}
