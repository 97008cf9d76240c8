import Glibc

/// A directory listing without Foundation (this module stays light).
enum ConfigFiles {
    static func contentsOfDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ConfigurationError("cannot open \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
