export { default as component } from '../../../../web/node_modules/@sveltejs/kit/src/runtime/components/svelte-5/error.svelte';
