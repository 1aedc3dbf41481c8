/*
 * Three.js as Sage's 3D viewer expects it: the global THREE of passagemath's threejs-sage build, which is the
 * library of the release Sage names (sage/ext_data/threejs/threejs-version.txt: r122, so three@0.122.0 from npm)
 * with the orbit controls and the "fat line" classes of its examples. esbuild bundles this into
 * sage3d/dist/three.js (npm run build); sage3d/frame.js loads it in the viewer's sandboxed frame.
 */
export * from "three";
export { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
export { Line2 } from "three/examples/jsm/lines/Line2.js";
export { LineGeometry } from "three/examples/jsm/lines/LineGeometry.js";
export { LineMaterial } from "three/examples/jsm/lines/LineMaterial.js";
export { LineSegments2 } from "three/examples/jsm/lines/LineSegments2.js";
export { LineSegmentsGeometry } from "three/examples/jsm/lines/LineSegmentsGeometry.js";
