/** Vite's `?url` imports: the built, hashed URL of a file (served by our own server). */
declare module '*?url' {
  const url: string;
  export default url;
}
